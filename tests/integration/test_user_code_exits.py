"""sys.exit() in a user function on an executor process fails the task; the executor lives on."""

from __future__ import annotations

import sys

import pytest

from kubestream.errors import JobFailedError
from tests.integration.conftest import Cluster


def _exit_on_zero(value: int) -> int:
    if value == 0:
        sys.exit(7)
    return value * 2


def test_sys_exit_in_a_task_fails_the_job_and_every_executor_stays_usable(
    cluster: Cluster,
) -> None:
    engine = cluster.engine
    before = sorted(engine.executor_ids())
    with pytest.raises(JobFailedError, match="SystemExit"):
        engine.parallelize(list(range(8)), 4).map(_exit_on_zero).collect()
    records = list(range(1, 41))
    assert sorted(engine.parallelize(records, 8).map(_exit_on_zero).collect()) == sorted(
        r * 2 for r in records
    )
    assert sorted(engine.executor_ids()) == before
