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


def _curve_greeting() -> bytes:
    """A valid ZMTP 3.0 greeting asking for the CURVE mechanism, as a client."""
    return (
        b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"CURVE".ljust(20, b"\x00") + b"\x00" * 32
    )


def _bytes_accepted_before_disconnect(port: int, limit: int) -> int:
    """Greet, declare a 1 GiB frame, stream zeros; how many bytes went out before the peer hung
    up (or `limit`, if it never did)."""
    sent = 0
    chunk = b"\x00" * 65536
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.settimeout(10)
        raw.sendall(_curve_greeting() + b"\x06" + (1 << 30).to_bytes(8, "big"))
        try:
            while sent < limit:
                raw.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return sent
    return sent


@pytest.mark.parametrize("server", ["driver", "block server"])
def test_a_peer_declaring_a_huge_frame_is_cut_off_before_it_is_read(
    cluster: Cluster, server: str
) -> None:
    if server == "driver":
        port = cluster.endpoint.port
    else:
        address = next(iter(cluster.engine.task_scheduler.executors().values())).address
        port = int(address.rsplit(":", 1)[1])
    limit = 64 << 20
    assert _bytes_accepted_before_disconnect(port, limit) < limit


def test_messages_larger_than_a_frame_travel_both_ways(cluster: Cluster) -> None:
    records = [str(i) * 300_000 for i in range(8)]
    rdd = cluster.engine.parallelize(records, 4).map(lambda s: s + "!")
    assert sorted(rdd.collect()) == sorted(s + "!" for s in records)
