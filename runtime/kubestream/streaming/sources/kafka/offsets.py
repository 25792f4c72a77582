"""Offset ranges: what one batch of a Kafka direct stream reads from one topic-partition.

The driver keeps them in the metadata checkpoint and shows them to `foreach_rdd`,
so they serialise to plain JSON-able lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class TopicPartition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Records at offsets `from_offset <= offset < until_offset` of one topic-partition.

    `count` is an upper bound on the records read: compaction, transaction markers
    and aborted records leave offsets without a record.
    """

    topic: str
    partition: int
    from_offset: int
    until_offset: int

    def __post_init__(self) -> None:
        if not 0 <= self.from_offset <= self.until_offset:
            raise ValueError(
                f"offset range of {self.topic}-{self.partition} must have"
                f" 0 <= from_offset <= until_offset, got [{self.from_offset}, {self.until_offset})"
            )

    @property
    def topic_partition(self) -> TopicPartition:
        """(topic, partition) of the range."""
        return TopicPartition(self.topic, self.partition)

    @property
    def count(self) -> int:
        """Offsets in the range: the most records it can hold."""
        return self.until_offset - self.from_offset

    def to_json(self) -> list[Any]:
        """[topic, partition, from_offset, until_offset], for checkpoints and stores."""
        return [self.topic, self.partition, self.from_offset, self.until_offset]

    @classmethod
    def from_json(cls, value: list[Any]) -> OffsetRange:
        """The range to_json() wrote; ValueError for a malformed one."""
        topic, partition, from_offset, until_offset = value
        return cls(str(topic), int(partition), int(from_offset), int(until_offset))
