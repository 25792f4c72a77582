"""Window and state operators against plain-Python references, on in-process executors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream import State, StateSpec
from kubestream.errors import ConfigError
from kubestream.testing import run_batches
from tests.operator_cases import canonical
from tests.stateful_cases import CASES, StatefulCase


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_stateful_operator_matches_reference(case: StatefulCase, data: st.DataObject) -> None:
    batches = data.draw(st.lists(case.records, min_size=1, max_size=7))
    produced = run_batches([batches], case.pipeline)
    assert [canonical(b) for b in produced] == [canonical(b) for b in case.reference(batches)]


def test_map_with_state_times_out_idle_keys_once() -> None:
    def fn(key: str, value: int | None, state: State) -> tuple[str, object]:
        if state.is_timing_out():
            return key, "timed out"
        state.update(state.get_option(0) + (value or 0))
        return key, state.get()

    batches = [[("a", 1), ("b", 2)], [("a", 3)], [], [("b", 1)], [], []]
    produced = run_batches([batches], lambda s: s.map_with_state(StateSpec.of(fn, timeout=2.0)))
    assert [sorted(map(str, b)) for b in produced] == [
        sorted(map(str, b))
        for b in [
            [("a", 1), ("b", 2)],
            [("a", 4)],
            [("b", "timed out")],
            [("a", "timed out"), ("b", 1)],
            [],
            [("b", "timed out")],
        ]
    ]


def test_update_state_by_key_removes_keys_returning_none() -> None:
    batches = [[("a", 1), ("b", 1)], [("a", -1)], [("b", 1)]]
    produced = run_batches(
        [batches],
        lambda s: s.update_state_by_key(lambda vs, old: (sum(vs) + (old or 0)) or None),
    )
    assert [sorted(b) for b in produced] == [[("a", 1), ("b", 1)], [("b", 1)], [("b", 2)]]


def test_window_not_a_multiple_of_the_batch_interval_is_refused() -> None:
    with pytest.raises(ConfigError, match="multiple"):
        run_batches([[[1]]], lambda s: s.window(2.5, 1))
