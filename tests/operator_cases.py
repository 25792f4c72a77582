"""Every DStream operator next to a plain-Python reference of what it must produce per batch.

Shared by the in-process tests and the tests on real executor processes.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from kubestream.streaming.dstream import DStream

Batch = list[Any]

numbers = st.lists(st.integers(-50, 50), max_size=30)
pairs = st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(-20, 20)), max_size=30)


@dataclass(frozen=True)
class Case:
    name: str
    records: Any
    pipeline: Callable[..., DStream]
    reference: Callable[..., Batch]
    streams: int = 1


def _double_partition(records: Iterator[int]) -> Iterator[int]:
    return (r * 2 for r in records)


def _group_ref(batch: Batch) -> Batch:
    groups: dict[str, list[int]] = defaultdict(list)
    for k, v in batch:
        groups[k].append(v)
    return [(k, sorted(v)) for k, v in groups.items()]


def _join_ref(left: Batch, right: Batch, keep_left: bool, keep_right: bool) -> Batch:
    out = []
    lk = {k for k, _ in left}
    rk = {k for k, _ in right}
    for k in lk | rk:
        lv = [v for kk, v in left if kk == k] or ([None] if keep_right else [])
        rv = [v for kk, v in right if kk == k] or ([None] if keep_left else [])
        out += [(k, (a, b)) for a in lv for b in rv]
    return out


def _cogroup_ref(left: Batch, right: Batch) -> Batch:
    keys = {k for k, _ in left} | {k for k, _ in right}
    return [
        (k, (sorted(v for kk, v in left if kk == k), sorted(v for kk, v in right if kk == k)))
        for k in keys
    ]


def _sorted_groups(stream: DStream) -> DStream:
    return stream.map_values(sorted)


CASES = [
    Case("map", numbers, lambda s: s.map(lambda x: x * 3 + 1), lambda b: [x * 3 + 1 for x in b]),
    Case(
        "flat_map",
        numbers,
        lambda s: s.flat_map(lambda x: [x] * (x % 3)),
        lambda b: [y for x in b for y in [x] * (x % 3)],
    ),
    Case(
        "filter",
        numbers,
        lambda s: s.filter(lambda x: x % 2 == 0),
        lambda b: [x for x in b if x % 2 == 0],
    ),
    Case(
        "map_partitions",
        numbers,
        lambda s: s.map_partitions(_double_partition),
        lambda b: [x * 2 for x in b],
    ),
    Case("glom", numbers, lambda s: s.glom().flat_map(lambda part: part), list),
    Case("repartition", numbers, lambda s: s.repartition(3), list),
    Case(
        "union",
        numbers,
        lambda a, b: a.union(b.map(lambda x: -x)),
        lambda a, b: a + [-x for x in b],
        2,
    ),
    Case("count", numbers, lambda s: s.count(), lambda b: [len(b)]),
    Case(
        "count_by_value", numbers, lambda s: s.count_by_value(), lambda b: list(Counter(b).items())
    ),
    Case("reduce", numbers, lambda s: s.reduce(operator.add), lambda b: [sum(b)] if b else []),
    Case(
        "reduce_by_key",
        pairs,
        lambda s: s.reduce_by_key(operator.add),
        lambda b: [(k, sum(v for kk, v in b if kk == k)) for k in {k for k, _ in b}],
    ),
    Case("group_by_key", pairs, lambda s: _sorted_groups(s.group_by_key()), _group_ref),
    Case(
        "combine_by_key",
        pairs,
        lambda s: s.combine_by_key(
            lambda v: (v, 1),
            lambda c, v: (c[0] + v, c[1] + 1),
            lambda c, d: (c[0] + d[0], c[1] + d[1]),
        ),
        lambda b: [
            (k, (sum(v for kk, v in b if kk == k), sum(1 for kk, _ in b if kk == k)))
            for k in {k for k, _ in b}
        ],
    ),
    Case("join", pairs, lambda a, b: a.join(b), lambda a, b: _join_ref(a, b, False, False), 2),
    Case(
        "left_outer_join",
        pairs,
        lambda a, b: a.left_outer_join(b),
        lambda a, b: _join_ref(a, b, True, False),
        2,
    ),
    Case(
        "right_outer_join",
        pairs,
        lambda a, b: a.right_outer_join(b),
        lambda a, b: _join_ref(a, b, False, True),
        2,
    ),
    Case(
        "full_outer_join",
        pairs,
        lambda a, b: a.full_outer_join(b),
        lambda a, b: _join_ref(a, b, True, True),
        2,
    ),
    Case(
        "cogroup",
        pairs,
        lambda a, b: a.cogroup(b).map_values(lambda s: (sorted(s[0]), sorted(s[1]))),
        _cogroup_ref,
        2,
    ),
    Case(
        "transform",
        numbers,
        lambda s: s.transform(lambda rdd: rdd.filter(lambda x: x > 0).map(str)),
        lambda b: [str(x) for x in b if x > 0],
    ),
    Case(
        "transform_with_time",
        numbers,
        lambda s: s.transform(lambda t, rdd: rdd.map(lambda x: (t % 1000, x))),
        lambda b: [(0, x) for x in b],
    ),
    Case("partition_by", pairs, lambda s: s.partition_by(3), list),
    Case(
        "persist",
        numbers,
        lambda s: s.map(abs).persist().map(str),
        lambda b: [str(abs(x)) for x in b],
    ),
    Case(
        "distinct", numbers, lambda s: s.transform(lambda r: r.distinct()), lambda b: list(set(b))
    ),
    Case(
        "subtract",
        numbers,
        lambda a, b: a.transform_with(b, lambda x, y: x.subtract(y)),
        lambda a, b: [x for x in a if x not in set(b)],
        2,
    ),
    Case(
        "subtract_by_key",
        pairs,
        lambda a, b: a.transform_with(b, lambda x, y: x.subtract_by_key(y)),
        lambda a, b: [(k, v) for k, v in a if k not in {kk for kk, _ in b}],
        2,
    ),
    Case(
        "intersection",
        numbers,
        lambda a, b: a.transform_with(b, lambda x, y: x.intersection(y)),
        lambda a, b: list(set(a) & set(b)),
        2,
    ),
    Case(
        "cartesian",
        numbers,
        lambda a, b: a.transform_with(b, lambda x, y: x.cartesian(y)),
        lambda a, b: [(x, y) for x in a for y in b],
        2,
    ),
    Case(
        "context_transform",
        numbers,
        lambda a, b: a.context().transform([a, b], lambda rdds: rdds[1].union(rdds[0])),
        lambda a, b: b + a,
        2,
    ),
    Case(
        "aggregate_by_key",
        pairs,
        lambda s: s.transform(
            lambda r: r.aggregate_by_key([], lambda acc, v: [*acc, v], operator.add).map_values(
                sorted
            )
        ),
        _group_ref,
    ),
]


def canonical(batch: Batch) -> list[str]:
    """Order-free comparison: partitions come back in any order."""
    return sorted(repr(r) for r in batch)


def expected(case: Case, inputs: list[list[Batch]]) -> list[list[str]]:
    length = max(len(stream) for stream in inputs)
    padded = [stream + [[]] * (length - len(stream)) for stream in inputs]
    return [canonical(case.reference(*[s[i] for s in padded])) for i in range(length)]
