"""A peer without the job's key pair can neither submit work nor read a block."""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest

from kubestream.core.protocol import FetchBlocks, RegisterExecutor, TaskFinished, TaskState
from kubestream.transport import Client, CurveKeys, RequestClient, generate_keypair
from tests.integration.conftest import Cluster


def test_client_with_another_key_cannot_register_or_report(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = CurveKeys(*generate_keypair())
    assert stranger.public != cluster.keys.public
    received: list[object] = []
    before = cluster.engine.executor_ids()
    with caplog.at_level(logging.WARNING):
        client = Client(
            stranger, f"tcp://127.0.0.1:{cluster.endpoint.port}", "intruder", received.append
        )
        client.send(RegisterExecutor("intruder", "tcp://127.0.0.1:1", 4, os.getpid(), 0))
        client.send(TaskFinished(1, TaskState.FINISHED, value=b"forged"))
        time.sleep(1.5)
        client.close()
    assert cluster.engine.executor_ids() == before
    assert received == []
    assert any("refused" in r.getMessage() for r in caplog.records)


def test_client_with_another_key_cannot_read_a_block(cluster: Cluster) -> None:
    address = next(iter(cluster.engine.task_scheduler.executors().values())).address
    stranger = RequestClient(CurveKeys(*generate_keypair()), timeout=1.0)
    with pytest.raises(ConnectionError):
        stranger.request(address, FetchBlocks(("any",)), abort=lambda: False)
    stranger.close()
    insider = RequestClient(cluster.keys, timeout=5.0)
    reply = insider.request(address, FetchBlocks(("no-such-block",)), abort=lambda: False)
    insider.close()
    assert reply.blobs == (None,)


def test_plain_tcp_bytes_reach_nothing(cluster: Cluster) -> None:
    before = cluster.engine.executor_ids()
    with socket.create_connection(("127.0.0.1", cluster.endpoint.port)) as raw:
        raw.sendall(
            b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f" + b"cos\nsystem\n(S'echo pwned'\ntR." * 10
        )
        time.sleep(0.5)
    assert cluster.engine.executor_ids() == before
