"""kill -9 of an executor mid-batch: the batch completes on the survivor with exact results."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from kubestream.testing import run_batches
from tests.integration.conftest import Cluster

RECORDS = list(range(200))


def slow(x: int) -> int:
    time.sleep(0.01)
    return x


def reference() -> list[tuple[int, int]]:
    totals: Counter[int] = Counter()
    for x in RECORDS:
        totals[x % 7] += x
    return sorted(totals.items())


def kill_when_busy(cluster: Cluster, victim: str) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cluster.engine.task_scheduler.running_on(victim):
                time.sleep(0.05)
                cluster.executors.kill(victim)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def map_stage_is_slow(stream: Any) -> Any:
    return stream.map(slow).map(lambda x: (x % 7, x)).reduce_by_key(lambda a, b: a + b)


def reduce_stage_is_slow(stream: Any) -> Any:
    return (
        stream.map(lambda x: (x % 7, x))
        .group_by_key()
        .map_values(lambda vs: sum(slow(v) for v in vs))
    )


@pytest.mark.parametrize(
    "pipeline", [map_stage_is_slow, reduce_stage_is_slow], ids=["map", "reduce"]
)
def test_killed_executor_loses_no_record_and_duplicates_none(
    fresh_cluster: Cluster, pipeline: Any
) -> None:
    watcher = kill_when_busy(fresh_cluster, "exec-2")
    (batch,) = run_batches([[RECORDS]], pipeline, engine=fresh_cluster.engine)
    watcher.join(5)
    assert "exec-2" not in fresh_cluster.engine.executor_ids()
    assert sorted(batch) == reference()
