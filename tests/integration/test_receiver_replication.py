"""Received blocks live on two executors: losing the receiver's executor loses no record."""

from __future__ import annotations

import time
from pathlib import Path

from kubestream import Receiver, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from tests.integration.conftest import Cluster

RECORDS = 5000


class HandOverOnce(Receiver):
    """Stores its records on its first start only, like a source that already handed them over."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def on_start(self) -> None:
        marker = Path(self.marker)
        if marker.exists():
            return
        marker.touch()
        self.store_many(range(RECORDS))

    def on_stop(self) -> None:
        pass


def test_blocks_survive_the_loss_of_the_receivers_executor(
    fresh_cluster: Cluster, tmp_path: Path
) -> None:
    engine = fresh_cluster.engine
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, engine=engine)
    seen: list[int] = []

    def collect(rdd: RDD) -> None:
        seen.extend(rdd.collect())

    ssc.receiver_stream(HandOverOnce(str(tmp_path / "handed-over"))).foreach_rdd(collect)
    ssc.start()
    try:
        deadline = time.monotonic() + 30
        while ssc.receiver_tracker.unallocated_records() < RECORDS:
            assert time.monotonic() < deadline, "the receiver never stored its records"
            time.sleep(0.02)
        host = ssc.receiver_tracker.receivers()[0].executor_id
        assert host is not None
        fresh_cluster.executors.kill(host)
        while host in engine.executor_ids():
            assert time.monotonic() < deadline + 30, "the killed executor was never declared lost"
            time.sleep(0.02)
        clock.advance(1.0)
        info = ssc.wait_for_batch(1_001_000, 60)
    finally:
        ssc.stop(stop_engine=False)
    assert not info.failed, info.errors
    assert sorted(seen) == list(range(RECORDS))
