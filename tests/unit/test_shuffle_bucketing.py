"""The map side of a shuffle: combining and bucketing agree with a plain reference for
any keys, whichever fast path a key type or merge function takes."""

from __future__ import annotations

import operator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.ops import Aggregator, HashPartitioner, identity

scalars = st.one_of(st.none(), st.text(max_size=5), st.integers(), st.booleans(), st.binary())
keys = st.one_of(scalars, st.tuples(scalars, scalars))
VALUE_KINDS = [st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=3)]


def reference_fold(pairs: list[tuple[Any, Any]], merge: Any) -> dict[Any, Any]:
    folded: dict[Any, Any] = {}
    for key, value in pairs:
        folded[key] = merge(folded[key], value) if key in folded else value
    return folded


@given(st.lists(st.tuples(keys, st.integers()), max_size=60), st.integers(1, 5))
def test_split_puts_each_pair_where_the_partitioner_says_in_input_order(
    pairs: list[tuple[Any, int]], n: int
) -> None:
    partitioner = HashPartitioner(n)
    expected: list[list[tuple[Any, int]]] = [[] for _ in range(n)]
    for pair in pairs:
        expected[partitioner(pair[0])].append(pair)
    assert partitioner.split(pairs) == expected


@given(st.data(), st.sampled_from(["operator.add", "a lambda"]))
def test_combining_with_add_matches_a_plain_fold(data: st.DataObject, how: str) -> None:
    values = data.draw(st.sampled_from(VALUE_KINDS))
    pairs = data.draw(st.lists(st.tuples(keys, values), max_size=60))
    merge = operator.add if how == "operator.add" else (lambda a, b: a + b)
    aggregator = Aggregator(identity, merge, merge)
    assert aggregator.combine_values(pairs) == reference_fold(pairs, operator.add)
    # Reduce side: each map output combined, then merged in map order.
    merged: dict[Any, Any] = {}
    for half in (pairs[: len(pairs) // 2], pairs[len(pairs) // 2 :]):
        aggregator.merge_into(merged, aggregator.combine_values(half).items())
    assert merged == reference_fold(pairs, operator.add)
