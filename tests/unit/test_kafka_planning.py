"""Offset-range planning of the Kafka direct stream, against plain-Python references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition
from kubestream.streaming.sources.kafka.planning import (
    OffsetsLostError,
    PartitionOffsets,
    plan_batch,
    records_budget,
    share_out,
)

PARTITIONS = [TopicPartition(t, p) for t in ("a", "b") for p in range(3)]


@st.composite
def broker_offsets(draw: st.DrawFn) -> dict[TopicPartition, PartitionOffsets]:
    chosen = draw(st.lists(st.sampled_from(PARTITIONS), unique=True, max_size=6))
    result = {}
    for tp in chosen:
        earliest = draw(st.integers(0, 50))
        result[tp] = PartitionOffsets(earliest, earliest + draw(st.integers(0, 200)))
    return result


@st.composite
def positions_for(
    draw: st.DrawFn, offsets: dict[TopicPartition, PartitionOffsets], lost: bool
) -> dict[TopicPartition, int]:
    positions = {}
    for tp in PARTITIONS:
        if tp in offsets and draw(st.booleans()):
            o = offsets[tp]
            positions[tp] = draw(
                st.integers(0, o.latest + 30) if lost else st.integers(o.earliest, o.latest)
            )
        elif tp not in offsets and lost and draw(st.integers(0, 9)) == 0:
            positions[tp] = draw(st.integers(0, 100))
    return positions


def reference_start(
    positions: dict[TopicPartition, int], o: PartitionOffsets, tp: TopicPartition
) -> int:
    wanted = positions.get(tp, o.earliest)
    return wanted if o.earliest <= wanted <= o.latest else o.earliest


def is_lost(
    positions: dict[TopicPartition, int], offsets: dict[TopicPartition, PartitionOffsets]
) -> set[TopicPartition]:
    return {
        tp
        for tp, p in positions.items()
        if tp not in offsets or not offsets[tp].earliest <= p <= offsets[tp].latest
    }


@given(data=st.data(), offsets=broker_offsets(), cap=st.none() | st.integers(1, 80))
def test_without_budget_each_range_reads_to_latest_or_the_cap(
    data: st.DataObject, offsets: dict[TopicPartition, PartitionOffsets], cap: int | None
) -> None:
    positions = data.draw(positions_for(offsets, lost=False))
    plan = plan_batch(positions, offsets, max_per_partition=cap)
    expected = []
    for tp in sorted(offsets):
        start = reference_start(positions, offsets[tp], tp)
        until = offsets[tp].latest if cap is None else min(offsets[tp].latest, start + cap)
        expected.append(OffsetRange(tp.topic, tp.partition, start, until))
    assert list(plan.ranges) == expected
    assert plan.positions == {r.topic_partition: r.until_offset for r in expected}
    assert plan.lag == {
        r.topic_partition: offsets[r.topic_partition].latest - r.until_offset for r in expected
    }
    assert set(plan.new_partitions) == set(offsets) - set(positions)
    assert plan.losses == ()


@given(data=st.data(), offsets=broker_offsets(), skip=st.booleans())
def test_lost_offsets_fail_naming_them_or_skip_to_earliest(
    data: st.DataObject, offsets: dict[TopicPartition, PartitionOffsets], skip: bool
) -> None:
    positions = data.draw(positions_for(offsets, lost=True))
    lost = is_lost(positions, offsets)
    if lost and not skip:
        with pytest.raises(OffsetsLostError) as caught:
            plan_batch(positions, offsets)
        assert {loss.topic_partition for loss in caught.value.losses} == lost
        for tp in lost:
            assert (
                f"topic {tp.topic!r} partition {tp.partition}: wanted offset {positions[tp]}"
                in str(caught.value)
            )
        assert "fail_on_data_loss=False" in str(caught.value)
        return
    plan = plan_batch(positions, offsets, fail_on_data_loss=not skip)
    assert {loss.topic_partition for loss in plan.losses} == lost
    for loss in plan.losses:
        o = offsets.get(loss.topic_partition)
        if o is not None and loss.wanted < o.earliest:
            assert loss.skipped == o.earliest - loss.wanted
        else:
            assert loss.skipped is None
    for r in plan.ranges:
        assert r.from_offset == reference_start(
            positions, offsets[r.topic_partition], r.topic_partition
        )
    # A partition that no longer exists is no longer planned.
    assert set(plan.positions) == set(offsets)


@given(
    data=st.data(),
    offsets=broker_offsets(),
    budget=st.integers(0, 400),
    cap=st.none() | st.integers(1, 80),
)
def test_a_budget_is_shared_in_full_without_exceeding_a_lag_or_the_cap(
    data: st.DataObject,
    offsets: dict[TopicPartition, PartitionOffsets],
    budget: int,
    cap: int | None,
) -> None:
    positions = data.draw(positions_for(offsets, lost=False))
    plan = plan_batch(positions, offsets, budget=budget, max_per_partition=cap)
    lag = {tp: o.latest - reference_start(positions, o, tp) for tp, o in offsets.items()}
    demand = {tp: n if cap is None else min(n, cap) for tp, n in lag.items()}
    backlogged = sum(1 for n in demand.values() if n > 0)
    assert sum(r.count for r in plan.ranges) == min(sum(demand.values()), max(budget, backlogged))
    for r in plan.ranges:
        assert r.from_offset == reference_start(
            positions, offsets[r.topic_partition], r.topic_partition
        )
        assert min(1, demand[r.topic_partition]) <= r.count <= demand[r.topic_partition]


@given(
    demand=st.dictionaries(st.integers(0, 20), st.integers(0, 10**12), max_size=12),
    budget=st.integers(0, 10**12),
)
def test_share_out_is_exact_for_large_numbers(demand: dict[int, int], budget: int) -> None:
    given_ = share_out(demand, demand, budget)
    backlogged = sum(1 for d in demand.values() if d > 0)
    assert sum(given_.values()) == min(sum(demand.values()), max(budget, backlogged))
    assert all(min(1, demand[k]) <= given_[k] <= demand[k] for k in demand)


def test_share_out_follows_the_lag() -> None:
    assert share_out({"x": 900, "y": 100}, {"x": 900, "y": 100}, 100) == {"x": 90, "y": 10}
    # Capped demand leaves its share to the others; the weights stay the lags.
    assert share_out({"x": 20, "y": 100}, {"x": 900, "y": 100}, 100) == {"x": 20, "y": 80}


@given(
    latest_growth=st.lists(
        st.lists(st.integers(0, 40), min_size=3, max_size=3), min_size=1, max_size=12
    ),
    budget=st.none() | st.integers(0, 60),
)
def test_successive_batches_read_every_offset_once_in_order(
    latest_growth: list[list[int]], budget: int | None
) -> None:
    tps = PARTITIONS[:3]
    latest = dict.fromkeys(tps, 0)
    positions: dict[TopicPartition, int] = {}
    read: dict[TopicPartition, list[int]] = {tp: [] for tp in tps}
    # Enough batches to drain the most a partition can get at one record a batch.
    for growth in [*latest_growth, *[[0, 0, 0]] * 12 * 40]:
        for tp, n in zip(tps, growth, strict=True):
            latest[tp] += n
        plan = plan_batch(
            positions, {tp: PartitionOffsets(0, latest[tp]) for tp in tps}, budget=budget
        )
        for r in plan.ranges:
            read[r.topic_partition].extend(range(r.from_offset, r.until_offset))
        positions = plan.positions
        if all(positions[tp] == latest[tp] for tp in tps):
            break
    assert read == {tp: list(range(latest[tp])) for tp in tps}


def test_records_budget() -> None:
    assert records_budget(None, 1.0) is None
    assert records_budget(1000.0, 0.25) == 250
    with pytest.raises(ValueError, match="batch_seconds"):
        records_budget(10.0, 0)


def test_offset_range_round_trips_through_json_and_rejects_backwards_ranges() -> None:
    r = OffsetRange("t", 2, 5, 9)
    assert OffsetRange.from_json(r.to_json()) == r and r.count == 4
    with pytest.raises(ValueError, match="t-2"):
        OffsetRange("t", 2, 9, 5)
