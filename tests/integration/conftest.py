"""A real driver endpoint and executor processes over CURVE ZeroMQ on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.driver.local_cluster import LocalExecutorProcesses
from kubestream.transport import CurveKeys, generate_keypair
from tests.integration.run_job import SeparateJob


@dataclass
class Cluster:
    engine: Engine
    endpoint: DriverEndpoint
    executors: LocalExecutorProcesses
    keys: CurveKeys


def start_cluster(executors: int = 2, heartbeat_timeout: float = 2.0) -> Cluster:
    keys = CurveKeys(*generate_keypair())
    engine = Engine(default_parallelism=4)
    endpoint = DriverEndpoint(
        engine, keys, "127.0.0.1", 0, heartbeat_interval=0.2, heartbeat_timeout=heartbeat_timeout
    )
    processes = LocalExecutorProcesses(executors, endpoint.port, keys, heartbeat_interval=0.2)
    if not engine.wait_for_executors(executors, timeout=30):
        raise RuntimeError(f"executors did not register: {engine.executor_ids()}")
    return Cluster(engine, endpoint, processes, keys)


def stop_cluster(cluster: Cluster) -> None:
    cluster.engine.broadcast(Shutdown("test done"))
    cluster.executors.stop()
    cluster.endpoint.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = start_cluster()
    yield c
    stop_cluster(c)


@pytest.fixture
def fresh_cluster() -> Iterator[Cluster]:
    c = start_cluster()
    yield c
    stop_cluster(c)


@pytest.fixture
def jobs() -> Iterator[list[SeparateJob]]:
    """SeparateJobs a test starts (append them); their processes are killed after it."""
    started: list[SeparateJob] = []
    yield started
    for job in started:
        job.stop()
