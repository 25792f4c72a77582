"""The driver's ZeroMQ face: registers executors, exchanges heartbeats, declares silent ones lost.

An executor that re-registers with the same incarnation (a retry) is left as it
is; a new incarnation under the same id replaces the old one, whose tasks rerun.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kubestream.core.engine import Engine
from kubestream.core.protocol import Heartbeat, RegisterExecutor, RegistrationRefused, ToExecutor
from kubestream.core.tasks import ExecutorAddress
from kubestream.transport import CurveKeys, Server

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Peer:
    identity: bytes
    incarnation: int
    last_seen: float


class DriverEndpoint:
    def __init__(
        self,
        engine: Engine,
        keys: CurveKeys,
        host: str = "0.0.0.0",
        port: int = 7077,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self._peers: dict[str, _Peer] = {}
        self._hash_probe: int | None = None
        self._last_heartbeat = 0.0
        self.server = Server(
            keys, host, port, self._on_message, self._on_tick, tick=0.02, name="driver-endpoint"
        )
        self.port = self.server.port

    def close(self) -> None:
        self.server.close()

    def _on_message(self, identity: bytes, message: Any) -> None:
        executor_id = identity.decode("utf-8", "replace")
        if isinstance(message, RegisterExecutor):
            self._register(identity, message)
            return
        peer = self._peers.get(executor_id)
        if peer is None:
            return
        peer.last_seen = time.monotonic()
        self.engine.handle(executor_id, message)

    def _register(self, identity: bytes, message: RegisterExecutor) -> None:
        executor_id = message.executor_id
        if self._hash_probe is None:
            self._hash_probe = message.hash_probe
        elif message.hash_probe != self._hash_probe:
            reason = (
                f"executor {executor_id} hashes strings differently from the others: "
                "run every executor with the same PYTHONHASHSEED"
            )
            log.error(reason)
            self.server.send(identity, RegistrationRefused(reason))
            return
        existing = self._peers.get(executor_id)
        now = time.monotonic()
        if existing is not None:
            if existing.incarnation == message.incarnation:
                existing.last_seen = now
                return
            # A new process under a known id (a replaced pod): the old one is
            # lost, with its running tasks, blocks and receivers.
            self.engine.detach_executor(executor_id, "replaced by a new process with its id")
        self._peers[executor_id] = _Peer(identity, message.incarnation, now)

        def link(msg: ToExecutor, peer: bytes = identity) -> None:
            self.server.send(peer, msg)

        self.engine.attach_executor(
            ExecutorAddress(executor_id, message.block_address), message.cores, link
        )
        self.server.send(identity, Heartbeat())

    def _on_tick(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self.heartbeat_interval:
            self._last_heartbeat = now
            for peer in self._peers.values():
                self.server.send(peer.identity, Heartbeat())
        for executor_id, peer in list(self._peers.items()):
            if now - peer.last_seen > self.heartbeat_timeout:
                del self._peers[executor_id]
                self.engine.detach_executor(
                    executor_id, f"no heartbeat for {self.heartbeat_timeout:.1f} s"
                )
        deadline = self.engine.task_scheduler.next_deadline()
        if deadline is not None and now >= deadline:
            self.engine.task_scheduler.revive()
