"""Every operator against its plain-Python reference, on a driver with 2 executor processes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.testing import run_batches
from tests.integration.conftest import Cluster
from tests.operator_cases import CASES, Case, canonical, expected


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_operator_matches_reference(cluster: Cluster, case: Case, data: st.DataObject) -> None:
    inputs = [
        data.draw(st.lists(case.records, min_size=1, max_size=3)) for _ in range(case.streams)
    ]
    produced = run_batches(inputs, case.pipeline, engine=cluster.engine)
    assert [canonical(batch) for batch in produced] == expected(case, inputs)


def test_functions_travel_once_per_executor(cluster: Cluster) -> None:
    shipped: list[tuple[str, str]] = []
    launches = 0
    original = cluster.engine.send

    def recording_send(executor_id: str, message: object) -> None:
        nonlocal launches
        functions = getattr(message, "functions", None)
        if functions is not None:
            launches += 1
            shipped.extend((executor_id, ref) for ref in functions)
        original(executor_id, message)  # type: ignore[arg-type]

    cluster.engine.send = recording_send  # type: ignore[method-assign]
    try:
        produced = run_batches(
            [[[1, 2, 3, 4, 5, 6, 7, 8]] * 6],
            lambda s: s.map(lambda x: (x % 3, x * 7)).reduce_by_key(max),
            engine=cluster.engine,
        )
    finally:
        del cluster.engine.send
    assert all(sorted(b) == [(0, 42), (1, 49), (2, 56)] for b in produced)
    assert launches >= 6 * 2
    assert len(shipped) == len(set(shipped)), "a function blob was sent twice to one executor"
