"""How often receivers cut blocks: Spark's default, halved for short batches, or the setting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import StreamingContext
from kubestream.errors import ConfigError
from kubestream.streaming.scheduler.receiver_tracker import (
    SPARK_BLOCK_INTERVAL,
    default_block_interval,
)


@given(st.floats(min_value=0.01, max_value=3600))
def test_a_batch_has_at_least_two_blocks_and_never_longer_ones_than_sparks(batch: float) -> None:
    block = default_block_interval(batch)
    assert block <= SPARK_BLOCK_INTERVAL
    assert block <= batch / 2
    assert block in (SPARK_BLOCK_INTERVAL, batch / 2)


@pytest.mark.parametrize(
    ("batch", "given_interval", "expected"),
    [(1.0, None, 0.2), (0.1, None, 0.05), (0.1, 0.02, 0.02), (1.0, 0.5, 0.5)],
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
