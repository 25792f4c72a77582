"""Planning one batch of a Kafka direct stream: an offset range per topic-partition.

Pure functions of the positions read so far and the offsets the brokers report;
the stream calls them on the driver once per batch. What they decide:

- a partition seen for the first time (added to a topic, or a new matching
  topic) starts at its earliest offset;
- offsets that are gone (deleted by retention, or the topic deleted and
  recreated) are data loss: by default planning fails naming topic, partition,
  wanted and available offsets; with `fail_on_data_loss=False` the partition skips
  to its earliest offset and the loss is returned for a warning and a counter;
- a rate limit (the backpressure estimate or a fixed maximum, records per second
  for the whole stream) is shared out in proportion to each partition's lag, as
  Spark's direct stream does, every partition with a backlog getting at least one
  record so none starves; a per-partition maximum caps each range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition

K = TypeVar("K")


@dataclass(frozen=True)
class PartitionOffsets:
    """What a broker reports for one partition: the first offset it still holds and the
    end a consumer may read to (the last stable offset under read_committed)."""

    earliest: int
    latest: int


@dataclass(frozen=True)
class DataLoss:
    """Offsets a batch should have read from but that the broker no longer has."""

    topic_partition: TopicPartition
    wanted: int
    available: PartitionOffsets | None
    """None when the partition no longer exists."""

    @property
    def skipped(self) -> int | None:
        """Records known to be lost; None when unknown (topic recreated or deleted)."""
        if self.available is not None and self.wanted < self.available.earliest:
            return self.available.earliest - self.wanted
        return None

    def __str__(self) -> str:
        tp = self.topic_partition
        where = f"topic {tp.topic!r} partition {tp.partition}: wanted offset {self.wanted}"
        if self.available is None:
            return f"{where}, but the partition no longer exists"
        available = f"available [{self.available.earliest}, {self.available.latest})"
        if self.wanted < self.available.earliest:
            return f"{where}, {available}: deleted before it was read (retention?)"
        return f"{where}, {available}: past the end (topic deleted and recreated?)"


class OffsetsLostError(RuntimeError):
    """Planned offsets are gone from the broker; raised unless data loss is allowed."""

    def __init__(self, losses: tuple[DataLoss, ...]) -> None:
        self.losses = losses
        super().__init__(
            "Kafka records were lost before this stream read them: "
            + "; ".join(map(str, losses))
            + ". To skip ahead to the earliest available offsets instead (the loss is"
            " logged and counted), pass fail_on_data_loss=False to kafka_stream."
        )


@dataclass(frozen=True)
class BatchPlan:
    """One batch's ranges (one per partition, sorted, empty ones included so the batch
    has a partition for each), the positions the next batch starts from, and the
    lag each partition keeps after this batch (latest offset minus planned until)."""

    ranges: tuple[OffsetRange, ...]
    positions: dict[TopicPartition, int]
    lag: dict[TopicPartition, int]
    new_partitions: tuple[TopicPartition, ...] = ()
    losses: tuple[DataLoss, ...] = ()


def share_out(demand: Mapping[K, int], weight: Mapping[K, int], budget: int) -> dict[K, int]:
    """Split `budget` over the keys in proportion to `weight`, no key above its `demand`.

    Every key with demand gets at least one, even past the budget (as Spark's
    minimum rate per partition), so the total is
    min(sum of demands, max(budget, keys with demand)). Integer arithmetic: the
    shares are exact for any sizes. Raises ValueError on a negative demand or budget.
    """
    if budget < 0 or any(d < 0 for d in demand.values()):
        raise ValueError(f"budget and demands must not be negative: {budget}, {dict(demand)}")
    given = {k: min(1, d) for k, d in demand.items()}
    remaining = budget - sum(given.values())
    unmet = sorted((k for k in demand if given[k] < demand[k]), key=repr)
    while remaining > 0 and unmet:
        total = sum(max(weight[k], 1) for k in unmet)
        step = 0
        for k in unmet:
            share = min(remaining * max(weight[k], 1) // total, demand[k] - given[k])
            given[k] += share
            step += share
        if step == 0:
            # Every share is under one record: the heaviest keys take one each.
            for k in sorted(unmet, key=lambda k: -weight[k])[:remaining]:
                given[k] += 1
                step += 1
        remaining -= step
        unmet = [k for k in unmet if given[k] < demand[k]]
    return given


def records_budget(rate: float | None, batch_seconds: float) -> int | None:
    """Records a batch may read at `rate` records per second; None (no limit) for None."""
    if rate is None:
        return None
    if rate < 0 or batch_seconds <= 0:
        raise ValueError(f"rate {rate} must be >= 0 and batch_seconds {batch_seconds} > 0")
    return math.floor(rate * batch_seconds)


def plan_batch(
    positions: Mapping[TopicPartition, int],
    offsets: Mapping[TopicPartition, PartitionOffsets],
    *,
    budget: int | None = None,
    max_per_partition: int | None = None,
    fail_on_data_loss: bool = True,
) -> BatchPlan:
    """The ranges of the next batch.

    `positions`: where each partition read so far ends (the next offset to read).
    `offsets`: every partition the stream reads now, with its broker offsets.
    `budget`: records for the whole batch (records_budget of the rate limit).
    `max_per_partition`: records per partition per batch.
    Raises OffsetsLostError for lost offsets unless `fail_on_data_loss` is False.
    """
    start: dict[TopicPartition, int] = {}
    losses: list[DataLoss] = []
    new = tuple(sorted(tp for tp in offsets if tp not in positions))
    for tp in sorted(positions):
        if tp not in offsets:
            losses.append(DataLoss(tp, positions[tp], None))
    for tp, available in sorted(offsets.items()):
        wanted = positions.get(tp, available.earliest)
        if not available.earliest <= wanted <= available.latest:
            losses.append(DataLoss(tp, wanted, available))
            wanted = available.earliest
        start[tp] = wanted
    if losses and fail_on_data_loss:
        raise OffsetsLostError(tuple(losses))
    lag = {tp: offsets[tp].latest - start[tp] for tp in start}
    demand = (
        lag
        if max_per_partition is None
        else {tp: min(n, max_per_partition) for tp, n in lag.items()}
    )
    take = demand if budget is None else share_out(demand, lag, budget)
    ranges = tuple(
        OffsetRange(tp.topic, tp.partition, start[tp], start[tp] + take[tp]) for tp in sorted(start)
    )
    return BatchPlan(
        ranges=ranges,
        positions={r.topic_partition: r.until_offset for r in ranges},
        lag={tp: lag[tp] - take[tp] for tp in sorted(start)},
        new_partitions=new,
        losses=tuple(losses),
    )
