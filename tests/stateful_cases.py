"""Window and state operators next to plain-Python references over the whole input.

A reference sees every batch and returns what each batch must produce ([] where
a window does not slide at that batch). Batch interval is 1 s, so window and
slide are counted in batches.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from kubestream import State, StateSpec
from kubestream.streaming.dstream import DStream

Batches = list[list[Any]]

numbers = st.lists(st.integers(-9, 9), max_size=12)
counts = st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 5)), max_size=12)


@dataclass(frozen=True)
class StatefulCase:
    name: str
    records: Any
    pipeline: Callable[[DStream], DStream]
    reference: Callable[[Batches], list[list[Any]]]


def windows(batches: Batches, width: int, slide: int) -> list[list[Any] | None]:
    """Concatenated window contents per batch, None where the window does not slide."""
    out: list[list[Any] | None] = []
    for i in range(len(batches)):
        if (i + 1) % slide:
            out.append(None)
        else:
            out.append([r for b in batches[max(0, i - width + 1) : i + 1] for r in b])
    return out


def per_window(
    batches: Batches, width: int, slide: int, fn: Callable[[list[Any]], list[Any]]
) -> list[list[Any]]:
    return [[] if w is None else fn(w) for w in windows(batches, width, slide)]


def key_sums(records: list[tuple[str, int]]) -> list[tuple[str, int]]:
    totals: Counter[str] = Counter()
    for k, v in records:
        totals[k] += v
    return [(k, v) for k, v in totals.items() if v]


def running_sums(batches: Batches) -> list[list[Any]]:
    totals: Counter[str] = Counter()
    out = []
    for batch in batches:
        for k, v in batch:
            totals[k] += v
        out.append(list(totals.items()))
    return out


def running_mapped(batches: Batches) -> list[list[Any]]:
    totals: Counter[str] = Counter()
    out = []
    for batch in batches:
        mapped = []
        for k, v in batch:
            totals[k] += v
            mapped.append((k, totals[k]))
        out.append(mapped)
    return out


def count_windows(batches: Batches, width: int, slide: int) -> list[list[Any]]:
    out = []
    for i, w in enumerate(windows(batches, width, slide)):
        seen = any(batches[: i + 1])
        out.append([] if w is None or not seen else [len(w)])
    return out


def add_running(key: str, value: int, state: State) -> tuple[str, int]:
    total = state.get_option(0) + value
    state.update(total)
    return key, total


CASES = [
    StatefulCase("window", numbers, lambda s: s.window(3, 1), lambda b: per_window(b, 3, 1, list)),
    StatefulCase(
        "window_sliding_2", numbers, lambda s: s.window(4, 2), lambda b: per_window(b, 4, 2, list)
    ),
    StatefulCase(
        "count_by_window",
        numbers,
        lambda s: s.count_by_window(2, 1),
        lambda b: count_windows(b, 2, 1),
    ),
    StatefulCase(
        "reduce_by_window",
        numbers,
        lambda s: s.reduce_by_window(operator.add, None, 3, 1),
        lambda b: per_window(b, 3, 1, lambda w: [sum(w)] if w else []),
    ),
    StatefulCase(
        "reduce_by_key_and_window",
        counts,
        lambda s: s.reduce_by_key_and_window(operator.add, None, 3, 1),
        lambda b: per_window(b, 3, 1, key_sums),
    ),
    StatefulCase(
        "reduce_by_key_and_window_inverse",
        counts,
        lambda s: s.reduce_by_key_and_window(
            operator.add, operator.sub, 3, 1, filter_fn=lambda kv: kv[1] != 0
        ),
        lambda b: per_window(b, 3, 1, key_sums),
    ),
    StatefulCase(
        "reduce_by_key_and_window_inverse_sliding_2",
        counts,
        lambda s: s.reduce_by_key_and_window(
            operator.add, operator.sub, 4, 2, filter_fn=lambda kv: kv[1] != 0
        ),
        lambda b: per_window(b, 4, 2, key_sums),
    ),
    StatefulCase(
        "count_by_value_and_window",
        numbers,
        lambda s: s.count_by_value_and_window(2, 1),
        lambda b: per_window(b, 2, 1, lambda w: list(Counter(w).items())),
    ),
    StatefulCase(
        "update_state_by_key",
        counts,
        lambda s: s.update_state_by_key(lambda values, old: sum(values) + (old or 0)),
        running_sums,
    ),
    StatefulCase(
        "map_with_state",
        counts,
        lambda s: s.map_with_state(StateSpec.of(add_running)),
        running_mapped,
    ),
    StatefulCase(
        "map_with_state_snapshots",
        counts,
        lambda s: s.map_with_state(StateSpec.of(add_running)).state_snapshots(),
        running_sums,
    ),
]
