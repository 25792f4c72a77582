"""Partition operators: each is a picklable callable (partition index, iterator) -> iterator.

Every narrow transformation funnels into one of these; a stage applies its
chain of operators lazily, so consecutive narrow steps never materialise.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

PartitionFn = Callable[[int, Iterator[Any]], Iterable[Any]]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class MapOp:
    fn: Callable[[Any], Any]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return map(self.fn, records)


@dataclass(frozen=True, slots=True)
class FlatMapOp:
    fn: Callable[[Any], Iterable[Any]]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return itertools.chain.from_iterable(map(self.fn, records))


@dataclass(frozen=True, slots=True)
class FilterOp:
    fn: Callable[[Any], bool]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return filter(self.fn, records)


@dataclass(frozen=True, slots=True)
class MapPartitionsOp:
    fn: Callable[[Iterator[Any]], Iterable[Any]]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return iter(self.fn(records))


@dataclass(frozen=True, slots=True)
class MapPartitionsWithIndexOp:
    fn: Callable[[int, Iterator[Any]], Iterable[Any]]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return iter(self.fn(index, records))


@dataclass(frozen=True, slots=True)
class MapValuesOp:
    fn: Callable[[Any], Any]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        fn = self.fn
        return ((k, fn(v)) for k, v in records)


@dataclass(frozen=True, slots=True)
class FlatMapValuesOp:
    fn: Callable[[Any], Iterable[Any]]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        fn = self.fn
        return ((k, out) for k, v in records for out in fn(v))


@dataclass(frozen=True, slots=True)
class GlomOp:
    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        return iter([list(records)])


@dataclass(frozen=True, slots=True)
class Aggregator:
    """combine_by_key's three functions, shipped to executors as one unit."""

    create_combiner: Callable[[Any], Any]
    merge_value: Callable[[Any, Any], Any]
    merge_combiners: Callable[[Any, Any], Any]

    def combine_values(self, records: Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
        """The map-side combine: one lookup a record (the hottest loop of a word count)."""
        create, merge = self.create_combiner, self.merge_value
        combined: dict[Any, Any] = {}
        get = combined.get
        if create is identity and merge is operator.add:  # reduce_by_key(add): no call a record
            for key, value in records:
                old = get(key, _MISSING)
                combined[key] = value if old is _MISSING else old + value
        elif create is identity:
            for key, value in records:
                old = get(key, _MISSING)
                combined[key] = value if old is _MISSING else merge(old, value)
        else:
            for key, value in records:
                old = get(key, _MISSING)
                combined[key] = create(value) if old is _MISSING else merge(old, value)
        return combined

    def merge_into(self, combined: dict[Any, Any], records: Iterable[tuple[Any, Any]]) -> None:
        merge, get = self.merge_combiners, combined.get
        if merge is operator.add:
            for key, value in records:
                old = get(key, _MISSING)
                combined[key] = value if old is _MISSING else old + value
            return
        for key, value in records:
            old = get(key, _MISSING)
            combined[key] = value if old is _MISSING else merge(old, value)


def identity(value: Any) -> Any:
    return value


def count_values(records: Iterator[Any]) -> Iterator[tuple[Any, int]]:
    """(record, occurrences) for each distinct record of a partition, for counting by value.
    Counter counts in C, where a `(record, 1)` pair and a combine step per record each
    cost a Python call.

    Raises
    ------
    TypeError
        A record is not hashable.
    """
    return iter(Counter(records).items())


def _singleton(value: Any) -> list[Any]:
    return [value]


def _append(values: list[Any], value: Any) -> list[Any]:
    values.append(value)
    return values


def _extend(values: list[Any], more: list[Any]) -> list[Any]:
    values.extend(more)
    return values


GROUP_BY_KEY = Aggregator(_singleton, _append, _extend)
"""group_by_key as a combine: values gathered into a list per key."""


def portable_hash(key: Any) -> int:
    """hash() made equal across processes: None and tuples holding None hash by address in 3.11.

    Strings agree because every executor runs with the same PYTHONHASHSEED.
    """
    if key is None:
        return 0
    if isinstance(key, tuple):
        h = 0x345678
        for item in key:
            h = ((h ^ portable_hash(item)) * 1000003) & 0xFFFFFFFFFFFFFFF
        return h ^ len(key)
    return hash(key)


@dataclass(frozen=True, slots=True)
class HashPartitioner:
    num_partitions: int

    def __call__(self, key: Any) -> int:
        return portable_hash(key) % self.num_partitions

    def split(self, pairs: Iterable[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
        """(key, value) pairs into one list per partition, each in input order: a shuffle's
        map-side bucketing, with hash() inlined for str keys (their hash is portable)."""
        n = self.num_partitions
        buckets: list[list[tuple[Any, Any]]] = [[] for _ in range(n)]
        appends = [bucket.append for bucket in buckets]
        for pair in pairs:
            key = pair[0]
            appends[(hash(key) if type(key) is str else portable_hash(key)) % n](pair)
        return buckets
