"""A cogroup reads co-partitioned parents in place and shuffles the others; results are the same.

Varies how many partitions each side and the state have, so some runs read both
sides in place, some one, some none, against plain-Python references.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream.testing import run_batches
from tests.operator_cases import canonical

pairs = st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(-3, 5)), max_size=15)
partitions = st.integers(1, 4)


def sums(records: list[tuple[str, int]]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for k, v in records:
        out[k] += v
    return dict(out)


@settings(max_examples=25, deadline=None)
@given(
    left=st.lists(pairs, min_size=1, max_size=4),
    right=st.lists(pairs, min_size=1, max_size=4),
    n_left=partitions,
    n_right=partitions,
    n_join=partitions,
)
def test_join_of_reduced_streams_matches_reference(
    left: list[Any], right: list[Any], n_left: int, n_right: int, n_join: int
) -> None:
    batches = max(len(left), len(right))
    left += [[]] * (batches - len(left))
    right += [[]] * (batches - len(right))

    def pipeline(a: Any, b: Any) -> Any:
        return a.reduce_by_key(operator.add, n_left).join(
            b.reduce_by_key(operator.add, n_right), n_join
        )

    produced = run_batches([left, right], pipeline)
    for index, batch in enumerate(produced):
        a, b = sums(left[index]), sums(right[index])
        expected = [(k, (a[k], b[k])) for k in a if k in b]
        assert canonical(batch) == canonical(expected)


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(pairs, min_size=1, max_size=5), n_reduce=partitions, n_state=partitions)
def test_running_totals_with_any_partitioning_match_reference(
    batches: list[Any], n_reduce: int, n_state: int
) -> None:
    def pipeline(stream: Any) -> Any:
        return stream.reduce_by_key(operator.add, n_reduce).update_state_by_key(
            lambda new, old: sum(new) + (old or 0), n_state
        )

    produced = run_batches([batches], pipeline)
    totals: Counter[str] = Counter()
    for index, batch in enumerate(produced):
        for k, v in batches[index]:
            totals[k] += v
        assert canonical(batch) == canonical(list(totals.items()))
