"""Which topics a Kafka direct stream reads: a fixed list or a pattern.

The stream re-lists the cluster's topics and partitions every
`partition_discovery_interval` seconds; partitions it has not seen start at
their earliest offset (planning.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Subscription:
    """Topics by name, or every topic whose whole name matches `pattern` (internal
    topics, whose names start with "__", never match)."""

    topics: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, topics: str | Sequence[str] | re.Pattern[str]) -> Subscription:
        """From kafka_stream's `topics` argument; ValueError naming it if empty or mixed."""
        if isinstance(topics, re.Pattern):
            return cls(pattern=topics)
        names = (topics,) if isinstance(topics, str) else tuple(topics)
        if not names or not all(isinstance(t, str) and t for t in names):
            raise ValueError(
                "topics must be a topic name, a non-empty list of names or a compiled"
                f" re.Pattern, got {topics!r}"
            )
        return cls(topics=tuple(dict.fromkeys(names)))

    def select(self, existing: Iterable[str]) -> list[str]:
        """The subscribed topics among `existing`, sorted."""
        if self.pattern is None:
            present = set(existing)
            return sorted(t for t in self.topics if t in present)
        pattern = self.pattern
        return sorted(t for t in existing if not t.startswith("__") and pattern.fullmatch(t))

    def __str__(self) -> str:
        return f"pattern {self.pattern.pattern!r}" if self.pattern else ", ".join(self.topics)
