"""sys.exit() and KeyboardInterrupt in user code fail their batch, not the thread that ran it.

In-process executors run the same ExecutorCore as executor processes; the real-process
case is in tests/integration/test_user_code_exits.py.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import pytest

from kubestream import BatchInfo, StreamingContext, StreamingListener
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD


def _exit(value: int) -> int:
    if value == 0:
        sys.exit(3)
    return value


def _interrupt(value: int) -> int:
    if value == 0:
        raise KeyboardInterrupt
    return value


def _run_three_batches(
    build: Callable[[StreamingContext, list[list[int]]], None],
) -> tuple[list[BatchInfo], list[list[int]]]:
    clock = ManualClock(100.0)
    ssc = StreamingContext(1.0, clock=clock)
    seen: list[list[int]] = []
    build(ssc, seen)
    ssc.start()
    try:
        infos = []
        for second in (101, 102, 103):
            clock.advance(1.0)
            infos.append(ssc.wait_for_batch(second * 1000, 30))
    finally:
        ssc.stop()
    return infos, seen


@pytest.mark.parametrize("fn", [_exit, _interrupt], ids=["sys.exit", "KeyboardInterrupt"])
def test_an_exit_in_a_task_fails_its_batch_and_later_batches_run(fn: Callable[[int], int]) -> None:
    def build(ssc: StreamingContext, seen: list[list[int]]) -> None:
        stream = ssc.queue_stream([[1, 2], [0, 3], [4, 5]])
        stream.map(fn).foreach_rdd(lambda rdd: seen.append(sorted(rdd.collect())))

    infos, seen = _run_three_batches(build)
    assert [i.failed for i in infos] == [False, True, False]
    assert ("SystemExit" if fn is _exit else "KeyboardInterrupt") in infos[1].errors[0]
    assert seen == [[1, 2], [4, 5]]


def test_an_exit_in_a_driver_side_output_fails_its_batch_and_later_batches_run() -> None:
    def build(ssc: StreamingContext, seen: list[list[int]]) -> None:
        def output(rdd: RDD) -> None:
            records = sorted(rdd.collect())
            if 0 in records:
                sys.exit("leaving")
            seen.append(records)

        ssc.queue_stream([[1], [0], [2]]).foreach_rdd(output)

    infos, seen = _run_three_batches(build)
    assert [i.failed for i in infos] == [False, True, False]
    assert "leaving" in infos[1].errors[0]
    assert seen == [[1], [2]]


def test_an_exit_in_a_listener_leaves_batches_running() -> None:
    class Exiting(StreamingListener):
        def on_batch_completed(self, batch: BatchInfo) -> None:
            sys.exit(1)

    def build(ssc: StreamingContext, seen: list[list[int]]) -> None:
        ssc.add_streaming_listener(Exiting())
        ssc.queue_stream([[1], [2], [3]]).foreach_rdd(lambda rdd: seen.append(rdd.collect()))

    infos, seen = _run_three_batches(build)
    assert not any(i.failed for i in infos)
    assert seen == [[1], [2], [3]]


def _slow(value: int) -> int:
    time.sleep(0.2)
    return value


def test_a_batch_cut_short_by_a_stop_is_pending_not_failed() -> None:
    clock = ManualClock(100.0)
    ssc = StreamingContext(1.0, clock=clock)
    started = threading.Event()

    def output(rdd: RDD) -> None:
        started.set()
        rdd.collect()

    ssc.queue_stream([list(range(40))]).map(_slow).foreach_rdd(output)
    ssc.start()
    clock.advance(1.0)
    assert started.wait(30)
    ssc.stop(graceful=False)
    assert not any(b.failed for b in ssc.batches), [b.errors for b in ssc.batches]
