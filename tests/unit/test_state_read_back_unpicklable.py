"""A read whose function after the state cannot be pickled fails its batch, as any failing
read does, and keeps the batch's update: the state version is materialised by the batch
itself, not left to the next batch's lineage."""

from __future__ import annotations

import threading
from typing import Any

from kubestream import StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from tests.stateful_cases import add_running

BATCHES = [[("a", 1), ("b", 1)], [("a", 2), ("c", 5)], [("a", 3)]]


def test_an_unpicklable_read_fails_its_batch_and_keeps_its_update() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, on_batch_failure="continue")
    lock = threading.Lock()  # what a user's closure may hold: it cannot be pickled
    failing = 1002000

    def output(batch_time: int, rdd: RDD[tuple[str, int]]) -> None:
        if batch_time == failing:
            rdd.map(lambda pair: (pair, lock)).collect()
        else:
            rdd.collect()

    mapped = ssc.queue_stream(BATCHES).map_with_state(StateSpec.of(add_running))
    mapped.foreach_rdd(output)
    ssc.start()
    try:
        clock.advance(1.0)
        assert not ssc.wait_for_batch(1001000, 60).failed
        clock.advance(1.0)
        info = ssc.wait_for_batch(failing, 60)
        assert info.failed and "pickle" in " ".join(info.errors)
        version: Any = mapped.combined.generated[failing]
        assert version.failure is None
        assert version.blocks is not None, "the failed batch's state update was not kept"
    finally:
        ssc.stop()
