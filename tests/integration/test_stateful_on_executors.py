"""Window and state operators on executor processes, and an executor killed under a stateful job."""

from __future__ import annotations

import operator
import threading
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.testing import run_batches
from tests.integration.conftest import Cluster
from tests.operator_cases import canonical
from tests.stateful_cases import CASES, StatefulCase, key_sums, per_window


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_stateful_operator_matches_reference(
    cluster: Cluster, case: StatefulCase, data: st.DataObject
) -> None:
    batches = data.draw(st.lists(case.records, min_size=1, max_size=5))
    produced = run_batches([batches], case.pipeline, engine=cluster.engine)
    assert [canonical(b) for b in produced] == [canonical(b) for b in case.reference(batches)]


def slow_pair(record: tuple[str, int]) -> tuple[str, int]:
    time.sleep(0.004)
    return record


def test_killed_executor_under_stateful_windowed_job(fresh_cluster: Cluster) -> None:
    batches: list[list[Any]] = [
        [(f"k{(i * 7 + b) % 11}", 1 + (i + b) % 3) for i in range(120)] for b in range(6)
    ]
    killed = threading.Event()

    def pipeline(stream: Any) -> Any:
        pairs = stream.map(slow_pair)
        totals = pairs.update_state_by_key(lambda values, old: sum(values) + (old or 0))
        windowed = pairs.reduce_by_key_and_window(
            operator.add, operator.sub, 3, 1, filter_fn=lambda kv: kv[1] != 0
        )
        return totals.map(lambda kv: ("total", kv)).union(windowed.map(lambda kv: ("window", kv)))

    jobs_done: list[None] = []
    original = fresh_cluster.engine.run_job

    def counting_run_job(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        jobs_done.append(None)
        return result

    def kill_once_state_exists() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(jobs_done) >= 3 and fresh_cluster.engine.task_scheduler.running_on("exec-2"):
                fresh_cluster.executors.kill("exec-2")
                killed.set()
                return
            time.sleep(0.005)

    fresh_cluster.engine.run_job = counting_run_job  # type: ignore[method-assign]
    watcher = threading.Thread(target=kill_once_state_exists, daemon=True)
    watcher.start()
    produced = run_batches([batches], pipeline, engine=fresh_cluster.engine, timeout=120)
    watcher.join(5)
    assert killed.is_set(), "the executor was never killed mid-job"

    running: Counter[str] = Counter()
    windows = per_window(batches, 3, 1, key_sums)
    for index, batch in enumerate(produced):
        for k, v in batches[index]:
            running[k] += v
        totals = sorted(kv for tag, kv in batch if tag == "total")
        window = sorted(kv for tag, kv in batch if tag == "window")
        assert totals == sorted(running.items()), f"state wrong after batch {index}"
        assert window == sorted(windows[index]), f"window wrong after batch {index}"
