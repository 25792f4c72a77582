"""How often and when receivers cut blocks: up to Spark's default, dividing the batch interval
evenly, or the setting; cuts fall a lead before the interval's multiples."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import StreamingContext
from kubestream.errors import ConfigError
from kubestream.executor.receiver_supervisor import (
    BLOCK_CUT_LEAD,
    CLOCK_RESOLUTION,
    next_block_cut,
)
from kubestream.streaming.scheduler.receiver_tracker import (
    SPARK_BLOCK_INTERVAL,
    default_block_interval,
)

clock_times = st.floats(min_value=0, max_value=2e9, allow_nan=False)  # seconds since the epoch
intervals = st.floats(min_value=0.01, max_value=60)  # block intervals, seconds


@given(st.floats(min_value=0.01, max_value=3600))
def test_blocks_divide_a_batch_evenly_into_the_fewest_no_longer_than_sparks(batch: float) -> None:
    block = default_block_interval(batch)
    blocks = round(batch / block)
    assert blocks * block == pytest.approx(batch)
    assert blocks >= 2
    assert block <= SPARK_BLOCK_INTERVAL * (1 + 1e-9)
    assert blocks == 2 or batch / (blocks - 1) > SPARK_BLOCK_INTERVAL


@given(clock_times, intervals)
def test_a_block_is_cut_within_an_interval_a_lead_before_a_multiple_of_it(
    now: float, interval: float
) -> None:
    cut = next_block_cut(now, interval)
    lead = min(BLOCK_CUT_LEAD, interval / 4)
    assert now < cut <= now + interval + CLOCK_RESOLUTION
    assert abs(math.remainder(cut + lead, interval)) < 1e-6  # seconds


@given(clock_times, intervals)
def test_cuts_advance_when_the_clock_reads_exactly_the_last_cut(
    now: float, interval: float
) -> None:
    """A cut fed back in as the time must give the next one: rounding in (now + lead) / interval
    returned the same cut or one a few ulps later, an empty block."""
    cut = next_block_cut(now, interval)
    assert next_block_cut(cut, interval) - cut == pytest.approx(interval, abs=1e-5)


@given(st.integers(100, 5000), st.integers(1_600_000_000, 1_900_000_000))
def test_cuts_fall_before_each_batch_time_so_batches_get_equal_blocks(
    batch_ms: int, start: int
) -> None:
    """Batch times are multiples of the batch interval (JobGenerator.first_batch_time)."""
    batch = batch_ms / 1000
    block = default_block_interval(batch)
    first = math.ceil(start / batch) * batch
    cuts, now = [], first
    while now < first + 9 * batch:
        now = next_block_cut(now, block)
        cuts.append(now)
    per_batch = [
        sum(t - batch < c <= t for c in cuts) for t in (first + i * batch for i in range(1, 9))
    ]
    assert per_batch == [round(batch / block)] * 8


@pytest.mark.parametrize(
    ("batch", "given_interval", "expected"),
    [(1.0, None, 0.2), (0.5, None, 0.5 / 3), (0.1, None, 0.05), (0.1, 0.02, 0.02), (1.0, 0.5, 0.5)],
)
def test_the_context_gives_its_receivers_the_interval(
    batch: float, given_interval: float | None, expected: float
) -> None:
    ssc = StreamingContext(batch, executors=1, block_interval=given_interval)
    try:
        assert ssc.receiver_tracker.block_interval == pytest.approx(expected)
    finally:
        ssc.stop()


@pytest.mark.parametrize("bad", [0, 0.001, 61, "fast"])
def test_a_bad_block_interval_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ConfigError, match="block_interval"):
        StreamingContext(1.0, executors=1, block_interval=bad)  # type: ignore[arg-type]
