"""Completion by position, starting offsets and topic selection of the Kafka direct stream."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream.streaming.sources.kafka.discovery import Subscription
from kubestream.streaming.sources.kafka.offsets import TopicPartition
from kubestream.streaming.sources.kafka.planning import PartitionOffsets
from kubestream.streaming.sources.kafka.progress import RangeProgress
from kubestream.streaming.sources.kafka.starting import (
    FromTimestamp,
    starting_positions,
    validate_starting_offsets,
)


@st.composite
def log_and_range(draw: st.DrawFn) -> tuple[list[bool], int, int]:
    """A partition's offsets, each True when a record is delivered there (False for
    compacted-away records, transaction markers and aborted records), and a range."""
    log = draw(st.lists(st.booleans(), max_size=60))
    until = draw(st.integers(0, len(log)))
    return log, draw(st.integers(0, until)), until


@given(
    case=log_and_range(), redeliver=st.lists(st.integers(0, 60), max_size=5), eof_only=st.booleans()
)
def test_a_range_completes_by_position_returning_each_record_in_it_once(
    case: tuple[list[bool], int, int], redeliver: list[int], eof_only: bool
) -> None:
    log, from_offset, until = case
    delivered = [o for o, present in enumerate(log) if present and o >= from_offset]
    # A consumer re-seeked after an error delivers some offsets again.
    stream = sorted(delivered + [o for o in redeliver if o in delivered])
    progress = RangeProgress(from_offset, until)
    returned = []
    for offset in stream:
        if progress.done:
            break
        if progress.accept(offset):
            returned.append(offset)
        if not eof_only:
            progress.advance(offset + 1)
    # The consumer reaches the partition's end (or reports its position past markers).
    progress.advance(len(log))
    assert progress.done
    assert returned == [o for o in delivered if o < until]


def test_a_range_ending_in_markers_is_done_only_once_the_position_passes_them() -> None:
    progress = RangeProgress(10, 14)
    assert progress.accept(10) and progress.accept(11)
    assert not progress.done  # 12 and 13 are a transaction's markers: never delivered
    progress.advance(14)
    assert progress.done
    assert RangeProgress(5, 5).done


def test_offsets_past_the_range_end_it_and_are_not_returned() -> None:
    progress = RangeProgress(0, 3)
    assert progress.accept(0)
    assert not progress.accept(7)
    assert progress.done


OFFSETS = {
    TopicPartition("a", 0): PartitionOffsets(5, 50),
    TopicPartition("a", 1): PartitionOffsets(0, 8),
}


def test_starting_positions_for_each_kind_of_start() -> None:
    a0, a1 = OFFSETS
    assert starting_positions("earliest", OFFSETS) == {a0: 5, a1: 0}
    assert starting_positions("latest", OFFSETS) == {a0: 50, a1: 8}
    assert starting_positions({("a", 0): 20}, OFFSETS) == {a0: 20, a1: 0}
    assert starting_positions({("a", 0): -1, ("a", 1): -2}, OFFSETS) == {a0: 50, a1: 0}
    assert starting_positions(FromTimestamp(1000), OFFSETS, {a0: 30, a1: None}) == {a0: 30, a1: 8}


@given(asked=st.dictionaries(st.sampled_from([("a", 0), ("a", 1), ("b", 0)]), st.integers(-2, 100)))
def test_explicit_offsets_are_kept_even_out_of_range_so_the_plan_names_them(
    asked: dict[tuple[str, int], int],
) -> None:
    positions = starting_positions(validate_starting_offsets(asked), OFFSETS)
    for tp, o in OFFSETS.items():
        wanted = asked.get((tp.topic, tp.partition), -2)
        assert positions[tp] == {-2: o.earliest, -1: o.latest}.get(wanted, wanted)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("newest", "starting_offsets must be"),
        ({"a": 1}, "must be a \\(topic, partition\\) tuple"),
        ({("a", 0): -3}, "starting_offsets\\[\\('a', 0\\)\\] must be an offset"),
    ],
)
def test_bad_starting_offsets_name_the_field(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_starting_offsets(value)
    with pytest.raises(ValueError, match="FromTimestamp"):
        FromTimestamp(-1)


def test_subscriptions_by_name_and_by_pattern() -> None:
    existing = ["orders", "orders-eu", "__consumer_offsets", "payments"]
    assert Subscription.of(["payments", "missing", "payments"]).select(existing) == ["payments"]
    assert Subscription.of("orders").select(existing) == ["orders"]
    pattern = Subscription.of(re.compile("orders.*|__.*"))
    assert pattern.select(existing) == ["orders", "orders-eu"]
    assert Subscription.of(re.compile("order")).select(existing) == []
    for bad in ([], "", ["a", 3]):
        with pytest.raises(ValueError, match="topics must be"):
            Subscription.of(bad)  # type: ignore[arg-type]
