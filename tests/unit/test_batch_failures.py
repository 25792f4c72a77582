"""No batch vanishes: a failure anywhere on the driver (generating jobs, outputs, listeners)
fails its batch visibly, and the failure policy decides what await_termination reports.

Issue 18's smallest case is the base: 0.5 s batches, a queue stream of [0], [1], [2], [3],
and a transform function (it runs on the driver while the batch's jobs are generated)
raising on some batches. The property: whichever batches fail, and in whichever driver-side
place, every batch time becomes a batch record, exactly the failing ones are failed (in the
status document and metrics too), the others produce their output, and the policy holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from kubestream import StreamingContext, StreamingListener
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from kubestream.driver.metrics import DriverMetrics
from kubestream.driver.status import context_status
from kubestream.errors import JobFailedError
from kubestream.streaming.batch import BatchInfo

BATCHES = 4


class Recorder(StreamingListener):
    def __init__(self) -> None:
        self.completed: list[BatchInfo] = []

    def on_batch_completed(self, batch: BatchInfo) -> None:
        self.completed.append(batch)


def _raise_on(failing: frozenset[int], how: str) -> Callable[[int], None]:
    def check(value: int) -> None:
        if value in failing:
            if how == "exit":
                raise SystemExit(3)
            raise ValueError(f"bad record {value}")

    return check


def _build(
    ssc: StreamingContext, place: str, failing: frozenset[int], how: str, out: list[list[int]]
) -> None:
    stream = ssc.queue_stream([[i] for i in range(BATCHES)])
    check = _raise_on(failing, how)

    def transform(rdd: RDD) -> RDD:
        for value in rdd.collect():
            check(value)
        return rdd

    def output(rdd: RDD) -> None:
        values = rdd.collect()
        for value in values:
            check(value)
        out.append(values)

    if place == "transform":
        stream.transform(transform).foreach_rdd(lambda rdd: out.append(rdd.collect()))
    elif place == "transform_with":
        stream.transform_with(stream, lambda a, b: transform(a)).foreach_rdd(
            lambda rdd: out.append(rdd.collect())
        )
    else:
        stream.foreach_rdd(output)


def _run(
    policy: str, place: str, failing: frozenset[int], how: str = "raise"
) -> tuple[StreamingContext, list[list[int]], Recorder, CollectorRegistry]:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(0.5, clock=clock, on_batch_failure=policy)
    recorder = Recorder()
    registry = CollectorRegistry()
    ssc.add_streaming_listener(
        DriverMetrics(registry, ssc.batch_interval, ssc.engine, ssc.receiver_tracker)
    )
    ssc.add_streaming_listener(recorder)
    out: list[list[int]] = []
    _build(ssc, place, failing, how, out)
    ssc.start()
    try:
        for _ in range(BATCHES):
            clock.advance(0.5)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
    except BaseException:
        ssc.stop()
        raise
    return ssc, out, recorder, registry


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    failing=st.frozensets(st.integers(0, BATCHES - 1)),
    place=st.sampled_from(["transform", "transform_with", "output"]),
    how=st.sampled_from(["raise", "exit"]),
)
def test_every_batch_is_recorded_and_exactly_the_failing_ones_fail(
    failing: frozenset[int], place: str, how: str
) -> None:
    ssc, out, recorder, registry = _run("continue", place, failing, how)
    try:
        status = context_status(ssc, "job", limit=100)
        assert ssc.await_termination(0.01) is False  # "continue" reports nothing
    finally:
        ssc.stop()
    times = [b.batch_time for b in ssc.batches]
    assert times == [times[0] + 500 * i for i in range(BATCHES)]
    assert [i for i, b in enumerate(ssc.batches) if b.failed] == sorted(failing)
    assert [b.batch_time for b in recorder.completed] == times
    assert out == [[i] for i in range(BATCHES) if i not in failing]
    states = {b["batch_time"]: b["state"] for b in status["batches"]}
    assert sorted(t for t, s in states.items() if s == "failed") == [
        times[i] for i in sorted(failing)
    ]
    assert registry.get_sample_value("kubestream_batches_failed_total") == len(failing)
    for i in failing:
        errors = ssc.batches[i].errors
        assert errors and ("SystemExit" if how == "exit" else f"bad record {i}") in errors[0]


def test_a_failing_transform_fails_its_batch_and_report_raises_the_first_failure() -> None:
    """Issue 18's smallest case, with the default policy (Spark's)."""
    clock = ManualClock(1000.0)
    ssc = StreamingContext(0.5, clock=clock)
    out: list[list[int]] = []
    _build(ssc, "transform", frozenset({1, 2}), "raise", out)
    ssc.start()
    try:
        for _ in range(BATCHES):
            clock.advance(0.5)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
        for _ in range(2):  # every call raises the first failure, as Spark's does
            with pytest.raises(JobFailedError, match="bad record 1") as failure:
                ssc.await_termination_or_timeout(5)
            assert str(ssc.batches[1].batch_time) in str(failure.value)
            assert "error generating jobs" in str(failure.value)
    finally:
        ssc.stop()
    assert out == [[0], [3]]


def test_stop_policy_stops_the_context_after_a_failed_generation() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(0.5, clock=clock, on_batch_failure="stop")
    out: list[list[int]] = []
    _build(ssc, "transform", frozenset({1}), "raise", out)
    ssc.start()
    try:
        clock.advance(0.5)
        ssc.wait_for_batch(round(clock.now() * 1000), 30)
        clock.advance(0.5)
        ssc.wait_for_batch(round(clock.now() * 1000), 30)
        with pytest.raises(JobFailedError, match="bad record 1"):
            ssc.await_termination(30)
        assert ssc.state.value == "stopped"
    finally:
        ssc.stop()
    assert out == [[0]]


class _Raising(StreamingListener):
    """Raises from every hook: the scheduler must run on regardless."""

    def _boom(self, *args: Any) -> None:
        raise RuntimeError("listener bug")

    on_batch_submitted = on_batch_started = on_batch_completed = _boom
    on_output_operation_started = on_output_operation_completed = _boom


def test_a_listener_raising_in_any_hook_loses_no_batch() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(0.5, clock=clock)
    ssc.add_streaming_listener(_Raising())
    out: list[list[int]] = []
    ssc.queue_stream([[i] for i in range(BATCHES)]).foreach_rdd(lambda r: out.append(r.collect()))
    ssc.start()
    try:
        for _ in range(BATCHES):
            clock.advance(0.5)
            assert not ssc.wait_for_batch(round(clock.now() * 1000), 30).failed
    finally:
        ssc.stop()
    assert out == [[i] for i in range(BATCHES)]
