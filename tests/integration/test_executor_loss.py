"""kill -9 of an executor mid-batch: the batch completes on the survivor with exact results."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from kubestream.core.engine import Engine
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.executor.process import ExecutorProcess
from kubestream.testing import run_batches
from kubestream.transport import CurveKeys, generate_keypair
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


def test_executor_replaced_under_its_id_is_attached_as_a_new_one() -> None:
    """A replacement pod keeps the executor id and pid 1: the driver must still drop the old
    process (and what ran there) and attach the new one, or its work never finishes."""
    keys = CurveKeys(*generate_keypair())
    engine = Engine(default_parallelism=4)
    endpoint = DriverEndpoint(engine, keys, "127.0.0.1", 0, heartbeat_interval=0.2)
    driver = f"tcp://127.0.0.1:{endpoint.port}"

    def start() -> tuple[ExecutorProcess, threading.Thread]:
        # In this test's process (so its hash seed), both send the same pid, as pods do.
        process = ExecutorProcess("pod-1", driver, keys, heartbeat_interval=0.2)
        thread = threading.Thread(target=process.run, daemon=True)
        thread.start()
        return process, thread

    def address() -> str | None:
        known = engine.task_scheduler.executors().get("pod-1")
        return None if known is None else known.address

    old, old_thread = start()
    try:
        deadline = time.monotonic() + 30
        while address() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first = address()
        assert first is not None, "the first process did not register"
        old.stop()  # gone without a word to the driver, as a deleted pod
        old_thread.join(10)
        new, new_thread = start()
        while address() == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert address() not in (None, first), "the new process under the old id was not attached"
        (batch,) = run_batches([[RECORDS]], map_stage_is_slow, engine=engine)
        assert sorted(batch) == reference()
        new.stop()
        new_thread.join(10)
    finally:
        old.stop()
        endpoint.close()
