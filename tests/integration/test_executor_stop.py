"""A stopping executor closes its sockets only after the fetches running on them gave up:
closing a ZeroMQ socket under another thread made tasks cut short by a stop log
"Socket operation on non-socket" tracebacks (issue 14)."""

from __future__ import annotations

import threading
import time

from kubestream.core.engine import Engine
from kubestream.core.tasks import ExecutorAddress
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.executor.process import ExecutorProcess
from kubestream.transport import CurveKeys, RequestServer, generate_keypair


def test_a_fetch_in_flight_at_stop_gives_up_before_its_socket_closes() -> None:
    keys = CurveKeys(*generate_keypair())
    engine = Engine(default_parallelism=2)
    endpoint = DriverEndpoint(engine, keys, "127.0.0.1", 0, heartbeat_interval=0.2)
    asked, release = threading.Event(), threading.Event()

    def never_answer(request: object) -> object:
        asked.set()
        release.wait(30)
        return None

    silent_peer = RequestServer(keys, "127.0.0.1", 0, never_answer, name="silent-peer")
    process = ExecutorProcess(
        "exec-1", f"tcp://127.0.0.1:{endpoint.port}", keys, heartbeat_interval=0.2
    )
    serving = threading.Thread(target=process.run, daemon=True)
    serving.start()
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            peer = ExecutorAddress("exec-2", f"tcp://127.0.0.1:{silent_peer.port}")
            process.core.fetch_blocks(peer, ["shuffle_0_0_0"])
        except BaseException as exc:
            outcome.append(exc)

    fetching = threading.Thread(target=fetch, daemon=True)
    try:
        fetching.start()
        assert asked.wait(30), "the fetch never reached the peer"
        stopped_at = time.monotonic()
        process.stop()
        serving.join(10)
        fetching.join(10)
        assert not serving.is_alive(), "the executor did not finish stopping"
        assert not fetching.is_alive(), "the fetch outlived the executor's stop"
        assert len(outcome) == 1
        assert type(outcome[0]) is ConnectionError, repr(outcome[0])
        assert time.monotonic() - stopped_at < 10
    finally:
        release.set()
        process.stop()
        silent_peer.close()
        endpoint.close()
