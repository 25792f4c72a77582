"""A stateful stream whose update function raises on one bad record, on executor processes.

The batch holding the bad record fails with the user's exception as its error; the
state stays what the last good batch left, and later batches go on from there, their
totals equal to a plain-Python count of every batch but the failed one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream import DStream, State, StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from tests.integration.conftest import Cluster

POISON = "poison"


class BadRecordError(ValueError):
    """The user's own error, raised by their update function."""


def running_total(values: list[int], old: int | None) -> int:
    if any(v < 0 for v in values):
        raise BadRecordError(f"negative count {min(values)}: a {POISON} record")
    return sum(values) + (old or 0)


def add_to_state(key: str, value: int | None, state: State[int]) -> None:
    if value is not None and value < 0:
        raise BadRecordError(f"negative count {value}: a {POISON} record")
    state.update((state.get_option(0) or 0) + (value or 0))


def by_update_state_by_key(pairs: DStream[tuple[str, int]]) -> DStream[tuple[str, int]]:
    return pairs.update_state_by_key(running_total)


def by_map_with_state(pairs: DStream[tuple[str, int]]) -> DStream[tuple[str, int]]:
    return pairs.map_with_state(StateSpec.of(add_to_state)).state_snapshots()


OPERATORS = [by_update_state_by_key, by_map_with_state]


def run(
    cluster: Cluster,
    batches: list[list[tuple[str, int]]],
    stateful: Callable[[DStream[tuple[str, int]]], DStream[tuple[str, int]]],
) -> tuple[list[Any], list[Any]]:
    """Each batch's (state, errors), one batch at a time on a manual clock."""
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, engine=cluster.engine, on_batch_failure="continue")
    states: dict[int, list[tuple[str, int]]] = {}

    def collect(batch_time: int, rdd: RDD[tuple[str, int]]) -> None:
        states[batch_time] = rdd.collect()

    stateful(ssc.queue_stream([list(b) for b in batches])).foreach_rdd(collect)
    ssc.start()
    out_states, out_errors = [], []
    try:
        for _ in batches:
            clock.advance(1.0)
            info = ssc.wait_for_batch(round(clock.now() * 1000), 60)
            out_states.append(sorted(states.get(info.batch_time, [])) if not info.failed else None)
            out_errors.append(list(info.errors))
    finally:
        ssc.stop(stop_engine=False)
    return out_states, out_errors


def reference(batches: list[list[tuple[str, int]]]) -> list[Any]:
    """Running totals per key, a batch with a negative count leaving them as they were."""
    totals: Counter[str] = Counter()
    out: list[Any] = []
    for batch in batches:
        if any(v < 0 for _, v in batch):
            out.append(None)
            continue
        for key, value in batch:
            totals[key] += value
        out.append(sorted(totals.items()))
    return out


keys = st.sampled_from([f"k{i}" for i in range(6)])
good_batch = st.lists(st.tuples(keys, st.integers(1, 5)), max_size=30)


@pytest.mark.parametrize("stateful", OPERATORS, ids=lambda f: f.__name__)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    before=st.lists(good_batch, min_size=1, max_size=3),
    bad=good_batch,
    bad_key=keys,
    after=st.lists(good_batch, min_size=2, max_size=3),
)
def test_a_failed_state_batch_leaves_the_last_good_state_and_later_batches_go_on(
    cluster: Cluster,
    stateful: Callable[[DStream[tuple[str, int]]], DStream[tuple[str, int]]],
    before: list[list[tuple[str, int]]],
    bad: list[tuple[str, int]],
    bad_key: str,
    after: list[list[tuple[str, int]]],
) -> None:
    batches = [*before, [*bad, (bad_key, -1)], *after]
    states, errors = run(cluster, batches, stateful)
    assert states == reference(batches)
    failed = len(before)
    assert [bool(e) for e in errors] == [i == failed for i in range(len(batches))], errors
    assert len(errors[failed]) == 1
    error = errors[failed][0]
    assert "BadRecordError" in error and f"a {POISON} record" in error, error
    assert "lost" not in error.lower(), error
