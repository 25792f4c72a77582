"""Every operator against its plain-Python reference, on in-process executors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.testing import run_batches
from tests.operator_cases import CASES, Case, canonical, expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_operator_matches_reference(case: Case, data: st.DataObject) -> None:
    inputs = [
        data.draw(st.lists(case.records, min_size=1, max_size=3)) for _ in range(case.streams)
    ]
    produced = run_batches(inputs, case.pipeline)
    assert [canonical(batch) for batch in produced] == expected(case, inputs)
