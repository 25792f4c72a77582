"""Batch timing and failure handling of the StreamingContext, on a manual clock."""

from __future__ import annotations

import pytest

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.errors import ConfigError
from kubestream.streaming.scheduler.job_generator import first_batch_time


def test_batch_times_are_aligned_to_the_interval() -> None:
    assert first_batch_time(12_345.0, 1000) == 13_000
    assert first_batch_time(13_000.0, 1000) == 14_000
    assert first_batch_time(12_345.0, 250) == 12_500


def test_a_crashing_user_function_fails_its_batch_and_the_job_goes_on() -> None:
    clock = ManualClock(100.0)
    ssc = StreamingContext(1.0, clock=clock)
    seen: list[list[int]] = []
    stream = ssc.queue_stream([[1, 2, 0, 4], [5, 6]])
    stream.map(lambda x: 10 // x).foreach_rdd(lambda rdd: seen.append(sorted(rdd.collect())))
    ssc.start()
    try:
        clock.advance(1.0)
        failed = ssc.wait_for_batch(101_000, 30)
        clock.advance(1.0)
        ok = ssc.wait_for_batch(102_000, 30)
    finally:
        ssc.stop()
    assert failed.failed
    assert "ZeroDivisionError" in failed.errors[0]
    assert not ok.failed
    assert seen == [[1, 2]]


def test_a_graph_without_outputs_is_refused_with_a_clear_message() -> None:
    ssc = StreamingContext(1.0, clock=ManualClock())
    ssc.queue_stream([[1]]).map(str)
    with pytest.raises(ConfigError, match="no output operations"):
        ssc.start()
    ssc.stop()


def test_batch_interval_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="batch_interval"):
        StreamingContext(0)
