"""Where a Kafka direct stream starts on a fresh start (no checkpoint).

`starting_offsets` of kafka_stream is one of: "earliest", "latest", a mapping
{(topic, partition): offset} (Kafka's -2 for earliest and -1 for latest allowed;
partitions left out start at the earliest offset, like partitions found later),
or FromTimestamp(ms) for the first record at or after that time. A restarted
driver ignores it and resumes from its checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from kubestream.streaming.sources.kafka.offsets import TopicPartition
from kubestream.streaming.sources.kafka.planning import PartitionOffsets

EARLIEST = -2
"""Kafka's sentinel offset for the start of a partition."""
LATEST = -1
"""Kafka's sentinel offset for the end of a partition."""


@dataclass(frozen=True)
class FromTimestamp:
    """Start at each partition's first record with a timestamp >= `ms` (Unix milliseconds)."""

    ms: int

    def __post_init__(self) -> None:
        if self.ms < 0:
            raise ValueError(f"FromTimestamp(ms) must be >= 0 milliseconds, got {self.ms}")


StartingOffsets = Literal["earliest", "latest"] | Mapping[tuple[str, int], int] | FromTimestamp


def validate_starting_offsets(value: object) -> StartingOffsets:
    """The value checked, or ValueError naming `starting_offsets` and what is allowed."""
    if value in ("earliest", "latest") or isinstance(value, FromTimestamp):
        return value
    if isinstance(value, Mapping):
        checked: dict[tuple[str, int], int] = {}
        for key, offset in value.items():
            if not (
                isinstance(key, tuple)
                and len(key) == 2
                and isinstance(key[0], str)
                and isinstance(key[1], int)
            ):
                raise ValueError(f"starting_offsets key {key!r} must be a (topic, partition) tuple")
            if not isinstance(offset, int) or offset < EARLIEST:
                raise ValueError(
                    f"starting_offsets[{key!r}] must be an offset >= 0, or -2 (earliest)"
                    f" or -1 (latest), got {offset!r}"
                )
            checked[(key[0], key[1])] = offset
        return checked
    raise ValueError(
        f"starting_offsets must be 'earliest', 'latest', a {{(topic, partition): offset}}"
        f" mapping or FromTimestamp(ms), got {value!r}"
    )


def starting_positions(
    spec: StartingOffsets,
    offsets: Mapping[TopicPartition, PartitionOffsets],
    by_timestamp: Mapping[TopicPartition, int | None] | None = None,
) -> dict[TopicPartition, int]:
    """The first offset to read of each partition in `offsets`.

    `by_timestamp` (needed for FromTimestamp) holds the broker's answer per
    partition: the offset of the first record at or after the time, None when no
    record is that recent (the partition then starts at its end). An explicit
    offset outside [earliest, latest] is kept as asked: the first plan reports it
    as data loss, naming it.
    """
    positions: dict[TopicPartition, int] = {}
    for tp, available in offsets.items():
        if spec == "earliest":
            positions[tp] = available.earliest
        elif spec == "latest":
            positions[tp] = available.latest
        elif isinstance(spec, FromTimestamp):
            if by_timestamp is None or tp not in by_timestamp:
                raise ValueError(f"no offset by timestamp for {tp}")
            found = by_timestamp[tp]
            positions[tp] = available.latest if found is None or found < 0 else found
        else:
            asked = spec.get((tp.topic, tp.partition), EARLIEST)
            positions[tp] = {EARLIEST: available.earliest, LATEST: available.latest}.get(
                asked, asked
            )
    return positions
