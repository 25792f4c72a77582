"""The DStream and StreamingContext additions of issue 18 beyond what PySpark's suite checks."""

from __future__ import annotations

import os
from pathlib import Path

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import PersistedRDD


def _advance(ssc: StreamingContext, clock: ManualClock, batches: int) -> list[bool]:
    failed = []
    for _ in range(batches):
        clock.advance(ssc.batch_interval)
        failed.append(ssc.wait_for_batch(round(clock.now() * 1000), 30).failed)
    return failed


def test_a_binary_file_of_partial_records_fails_its_batch_naming_the_file(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, on_batch_failure="continue")
    out: list[list[bytes]] = []
    ssc.binary_records_stream(str(tmp_path), 4).foreach_rdd(lambda r: out.append(r.collect()))
    ssc.start()
    try:
        (tmp_path / "good").write_bytes(b"abcdefgh")
        assert _advance(ssc, clock, 1) == [False]
        (tmp_path / "torn").write_bytes(b"abcde")
        assert _advance(ssc, clock, 1) == [True]
        assert "torn" in ssc.batches[-1].errors[0] and "4-byte" in ssc.batches[-1].errors[0]
    finally:
        ssc.stop()
    assert out == [[b"abcd", b"efgh"]]


def test_persist_stores_each_batch_once_for_every_output() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    stream = ssc.queue_stream([[1, 2], [3]]).map(lambda x: x * 10)
    assert stream.cache() is stream and stream.context() is ssc
    seen: list[tuple[str, list[int]]] = []
    stream.foreach_rdd(lambda r: seen.append(("a", r.collect())))
    stream.map(lambda x: x + 1).foreach_rdd(lambda r: seen.append(("b", r.collect())))
    ssc.start()
    try:
        assert _advance(ssc, clock, 2) == [False, False]
        assert all(isinstance(rdd, PersistedRDD) for rdd in stream.generated.values())
    finally:
        ssc.stop()
    assert seen == [("a", [10, 20]), ("b", [11, 21]), ("a", [30]), ("b", [31])]


def test_remember_keeps_rdds_and_slice_returns_them() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    ssc.remember(3.0)
    stream = ssc.queue_stream([[i] for i in range(6)])
    times: list[int] = []
    stream.foreach_rdd(lambda t, rdd: times.append(t))
    ssc.start()
    try:
        _advance(ssc, clock, 6)
        kept = stream.slice(times[0], times[-1])
        assert [r for rdd in kept for r in rdd.collect()] == [3, 4, 5]
    finally:
        ssc.stop()


def test_checkpoint_interval_of_a_stream_sets_the_data_checkpoint_interval(
    tmp_path: Path,
) -> None:
    ssc = StreamingContext(1.0, str(tmp_path), clock=ManualClock(1000.0), executors=1)
    state = ssc.rate_stream(5).map(lambda x: (x % 2, 1)).update_state_by_key(_total)
    state.checkpoint(3).foreach_rdd(lambda rdd: None)
    ssc.start()
    try:
        assert ssc._checkpointer is not None and ssc._checkpointer.interval_ms == 3000
    finally:
        ssc.stop()
    assert os.listdir(tmp_path)


def _total(values: list[int], state: int | None) -> int:
    return sum(values, state or 0)


def test_get_active_or_create_with_a_checkpoint_directory(tmp_path: Path) -> None:
    def create() -> StreamingContext:
        ssc = StreamingContext(1.0, clock=ManualClock(1000.0), executors=1)
        ssc.rate_stream(5).foreach_rdd(lambda rdd: None)
        return ssc

    ssc = StreamingContext.get_active_or_create(str(tmp_path), create)
    try:
        assert ssc.checkpoint_dir == str(tmp_path)
        ssc.start()
        assert StreamingContext.get_active_or_create(str(tmp_path), create) is ssc
    finally:
        ssc.stop()
