"""PIDRateEstimator: Spark's PIDRateEstimatorSuite, in seconds instead of milliseconds."""

from __future__ import annotations

import random

import pytest

from kubestream.errors import ConfigError
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.context import StreamingContext
from kubestream.streaming.scheduler.rate_controller import PIDRateEstimator, RateController


def default_estimator() -> PIDRateEstimator:
    return PIDRateEstimator(0.020, 1.0, 0.0, 0.0, 10)


def test_defaults_are_sparks() -> None:
    p = PIDRateEstimator(1.0)
    assert (p.proportional, p.integral, p.derivative, p.min_rate) == (1.0, 0.2, 0.0, 100.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_interval": 0},
        {"batch_interval": 1, "proportional": -1},
        {"batch_interval": 1, "integral": -0.1},
        {"batch_interval": 1, "derivative": -0.1},
        {"batch_interval": 1, "min_rate": 0},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        PIDRateEstimator(**kwargs)


def test_first_estimate_is_none_and_the_second_is_the_processing_rate() -> None:
    p = default_estimator()
    assert p.compute(0, 10, 0.010, 0) is None
    assert p.compute(10, 10, 0.010, 0) == pytest.approx(1000)


def test_no_estimate_without_time_passing() -> None:
    p = default_estimator()
    p.compute(0, 10, 0.010, 0)
    assert p.compute(10, 10, 0.010, 0) is not None
    assert p.compute(10, 10, 0.010, 0) is None
    assert p.compute(5, 10, 0.010, 0) is None


def test_no_estimate_from_an_empty_batch_or_one_processed_in_no_time() -> None:
    p = default_estimator()
    p.compute(0, 10, 0.010, 0)
    assert p.compute(10, 0, 0.010, 0) is None
    assert p.compute(20, -10, 0.010, 0) is None
    assert p.compute(30, 10, 0, 0) is None
    assert p.compute(40, 10, -0.010, 0) is None


def test_the_estimate_never_falls_below_the_minimum_rate() -> None:
    p = PIDRateEstimator(0.020, 1.0, 1.0, 0.0, 5)
    results = [p.compute(i * 20, 1, 0.020, 0.100) for i in range(50)]
    assert results[0] is None
    assert results[1:] == [5] * 49


@pytest.mark.parametrize("growing", [True, False])
def test_without_backlog_the_rate_follows_the_processing_speed(growing: bool) -> None:
    p = PIDRateEstimator(0.020, 1.0, 1.0, 0.0, 10)
    counts = [(x + 1) * 20 if growing else (50 - x) * 20 for x in range(50)]
    results = [p.compute(i * 20, n, 0.020, 0) for i, n in enumerate(counts)]
    assert results[0] is None
    assert results[1:] == pytest.approx([n / 0.020 for n in counts[1:]])


def test_with_a_backlog_the_rate_stays_below_the_processing_speed() -> None:
    rng = random.Random(7)
    p = PIDRateEstimator(0.020, 1.0, 0.01, 0.0, 10)
    counts = [rng.randint(1000, 1999) for _ in range(50)]
    waits = [rng.randint(1, 19) / 1000 for _ in range(50)]
    results = [p.compute(i * 20, counts[i], 0.020, waits[i]) for i in range(50)]
    assert results[0] is None
    for n in range(1, 50):
        rate = results[n]
        assert rate is not None
        assert 10 <= rate < counts[n] / 0.020


def test_a_rate_controller_limits_its_stream_from_the_streams_own_records() -> None:
    ssc = StreamingContext(1.0, executors=1)
    try:
        stream = ssc.rate_stream(10_000)
        other = ssc.rate_stream(10)
        controller = RateController(stream, PIDRateEstimator(1.0))
        running = BatchInfo(1000, 1.0, 900, {stream.id: 500, other.id: 400}, processing_start=1.0)
        controller.on_batch_completed(running)
        first = BatchInfo(1000, 1.0, 900, {stream.id: 500, other.id: 400}, 1.0, 1.5)
        controller.on_batch_completed(first)
        assert stream.rate_limit is None, "the first batch only sets the starting rate"
        second = BatchInfo(2000, 2.0, 900, {stream.id: 500, other.id: 400}, 2.0, 3.0)
        controller.on_batch_completed(second)
        # Processed at 500/s after allowing 1000/s: the rate drops to 500/s (no backlog).
        assert stream.rate_limit == pytest.approx(500)
        assert other.rate_limit is None
        stream.max_rate = 300
        assert stream.rate_limit == 300, "the fixed maximum caps the estimate"
    finally:
        ssc.stop()
