"""A job reading a state version not yet computed computes it in the stage that reads it
(tasks.ReadBack): a stateful batch is two stages, not three, its results match a
plain-Python reference, and a failing read fails its batch but keeps the batch's update."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream import DStream, StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.dag_scheduler import DAGScheduler
from kubestream.core.rdd import RDD
from kubestream.testing import run_batches
from tests.stateful_cases import add_running, running_mapped, running_sums

Pairs = list[tuple[str, int]]
BOOM = ("boom", 1)


def running_sum(values: list[int], old: int | None) -> int:
    return sum(values) + (old or 0)


def by_update_state_by_key(pairs: DStream[tuple[str, int]]) -> DStream[tuple[str, int]]:
    return pairs.update_state_by_key(running_sum)


def by_map_with_state(pairs: DStream[tuple[str, int]]) -> DStream[tuple[str, int]]:
    return pairs.map_with_state(StateSpec.of(add_running))


def by_state_snapshots(pairs: DStream[tuple[str, int]]) -> DStream[tuple[str, int]]:
    return pairs.map_with_state(StateSpec.of(add_running)).state_snapshots()


OPERATORS = [by_update_state_by_key, by_map_with_state, by_state_snapshots]


def reference(operator: Callable[..., Any], batches: list[Pairs]) -> list[Pairs]:
    expected = running_mapped(batches) if operator is by_map_with_state else running_sums(batches)
    return [sorted(b) for b in expected]


@contextmanager
def counting_stages() -> Iterator[list[int]]:
    stages: list[int] = []
    real = DAGScheduler._run_stage

    def counted(self: DAGScheduler, rdd: RDD, *args: Any, **kwargs: Any) -> Any:
        stages.append(rdd.id)
        return real(self, rdd, *args, **kwargs)

    with mock.patch.object(DAGScheduler, "_run_stage", counted):
        yield stages


batches_of_pairs = st.lists(
    st.lists(st.tuples(st.sampled_from("abcdefg"), st.integers(1, 9)), max_size=20),
    min_size=1,
    max_size=5,
)


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda f: f.__name__)
@settings(max_examples=10, deadline=None)
@given(batches=batches_of_pairs)
def test_a_stateful_batch_is_two_stages_and_matches_a_plain_count(
    operator: Callable[..., DStream[tuple[str, int]]], batches: list[Pairs]
) -> None:
    with counting_stages() as stages:
        produced = run_batches([batches], operator)
    assert [sorted(b) for b in produced] == reference(operator, batches)
    # The records' map stage (none for an empty batch), then one stage updating and reading.
    assert len(stages) == sum(2 if batch else 1 for batch in batches)


def fails_on_boom(pair: tuple[str, int]) -> tuple[str, int]:
    if pair == BOOM:
        raise ValueError("the output's own error, on the boom key's first count")
    return pair


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda f: f.__name__)
@settings(max_examples=10, deadline=None)
@given(before=batches_of_pairs, after=batches_of_pairs)
def test_a_failing_read_fails_its_batch_and_keeps_its_update(
    operator: Callable[..., DStream[tuple[str, int]]], before: list[Pairs], after: list[Pairs]
) -> None:
    after = [[*batch, BOOM] for batch in after]  # boom's total grows past 1 after the failure
    batches = [*before, [*before[0], BOOM], *after]
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, on_batch_failure="continue")
    outputs: dict[int, Pairs] = {}

    def collect(batch_time: int, rdd: RDD[tuple[str, int]]) -> None:
        outputs[batch_time] = sorted(rdd.collect())

    operator(ssc.queue_stream(batches)).map(fails_on_boom).foreach_rdd(collect)
    ssc.start()
    got, errors = [], []
    try:
        for _ in batches:
            clock.advance(1.0)
            info = ssc.wait_for_batch(round(clock.now() * 1000), 60)
            got.append(None if info.failed else outputs[info.batch_time])
            errors.append(" ".join(info.errors))
    finally:
        ssc.stop()
    expected: list[Pairs | None] = list(reference(operator, batches))
    expected[len(before)] = None
    assert got == expected
    assert "the output's own error" in errors[len(before)], errors
