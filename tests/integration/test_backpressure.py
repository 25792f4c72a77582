"""Backpressure on real executor processes: a source producing twice what the job can process.

The job processes about 1000 records/s (its output operation sleeps 1 ms per
record) while a spool directory fills at 2000 records/s. Without backpressure
every batch takes all that arrived, runs longer than the batch interval, and the
scheduling delay grows batch after batch. With it, the receiver is slowed to the
rate the job keeps up with, the backlog stays in the spool, and the delay stays
bounded. Either way every record is processed exactly once. Both delay curves
are written to artifacts/backpressure.json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from tests.integration.conftest import Cluster, start_cluster, stop_cluster
from tests.integration.spool import SpoolReceiver, write_records

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
BATCH_INTERVAL = 0.5
PRODUCE_SECONDS = 6.0
RECORDS_PER_FILE = 50
FILES_PER_SECOND = 40  # 2000 records/s
SECONDS_PER_RECORD = 0.001  # the job's capacity: about 1000 records/s


def produce(spool: Path) -> int:
    """Writes records at 2000/s for PRODUCE_SECONDS; returns how many."""
    written = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < PRODUCE_SECONDS:
        while written < elapsed * FILES_PER_SECOND * RECORDS_PER_FILE:
            write_records(spool, written, RECORDS_PER_FILE)
            written += RECORDS_PER_FILE
        time.sleep(0.005)
    return written


def run_job(cluster: Cluster, spool: Path, backpressure: bool) -> list[float]:
    """Scheduling delay of each batch generated while the source produced, and every record."""
    ssc = StreamingContext(BATCH_INTERVAL, engine=cluster.engine, backpressure=backpressure)
    seen: list[int] = []

    def slow_output(rdd: RDD) -> None:
        records = rdd.collect()
        time.sleep(len(records) * SECONDS_PER_RECORD)
        seen.extend(records)

    ssc.receiver_stream(SpoolReceiver(str(spool))).foreach_rdd(slow_output)
    ssc.start()
    try:
        produced_from = time.time()
        produced = produce(spool)
        produced_until = time.time()
        deadline = time.monotonic() + 90
        while len(seen) < produced and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        ssc.stop(stop_engine=False)
    during = [
        b
        for b in ssc.batches
        if produced_from * 1000 < b.batch_time <= produced_until * 1000 and b.completed
    ]
    delays = [b.scheduling_delay or 0.0 for b in sorted(during, key=lambda b: b.batch_time)]
    assert sorted(seen) == list(range(produced)), "a record was lost or processed twice"
    return delays


def test_backpressure_keeps_the_delay_bounded_and_loses_nothing(tmp_path: Path) -> None:
    curves = {}
    for backpressure in (False, True):
        spool = tmp_path / f"spool-{backpressure}"
        spool.mkdir()
        cluster = start_cluster()
        try:
            curves[backpressure] = run_job(cluster, spool, backpressure)
        finally:
            stop_cluster(cluster)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "backpressure.json").write_text(
        json.dumps(
            {
                "batch_interval_seconds": BATCH_INTERVAL,
                "produced_records_per_second": FILES_PER_SECOND * RECORDS_PER_FILE,
                "processed_records_per_second_at_most": 1 / SECONDS_PER_RECORD,
                "scheduling_delay_seconds": {
                    "backpressure_off": curves[False],
                    "backpressure_on": curves[True],
                },
            },
            indent=2,
        )
    )
    off, on = curves[False], curves[True]
    assert len(off) >= 8 and len(on) >= 8, curves
    third = len(off) // 3
    assert off[-1] > off[third] + 4 * BATCH_INTERVAL, f"without backpressure it kept up: {off}"
    assert on[-1] <= max(on[: len(on) // 2]), f"with backpressure the delay still grew: {on}"
    assert on[-1] < off[-1] / 2, curves
