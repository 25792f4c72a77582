"""An executor process: ExecutorCore behind a DEALER to the driver and a block server for peers.

It keeps re-registering while the driver is silent, so it survives a driver
restart, and exits when told to, when the driver stays away longer than
`driver_timeout`, or when its parent (local mode) is gone.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry

from kubestream.access import OPEN, Access
from kubestream.core import resources
from kubestream.core.protocol import (
    BlocksFetched,
    BlockStored,
    FetchBlocks,
    Heartbeat,
    PutBlock,
    RegisterExecutor,
    RegistrationRefused,
    Shutdown,
)
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.core import ExecutorCore
from kubestream.executor.metrics import ExecutorMetrics
from kubestream.executor.metrics_server import MetricsServer
from kubestream.transport import Client, CurveKeys, RequestClient, RequestServer

log = logging.getLogger(__name__)

HASH_PROBE_TEXT = "kubestream-partitioning-probe"
# How long a stopping executor waits for its running tasks to end, so their results still
# reach the driver (seconds).
TASKS_STOP_WAIT = 2.0


class ExecutorProcess:
    def __init__(
        self,
        executor_id: str,
        driver_address: str,
        keys: CurveKeys,
        advertise_host: str = "127.0.0.1",
        block_host: str = "0.0.0.0",
        block_port: int = 0,
        metrics_port: int | None = None,
        metrics_access: Access = OPEN,
        cores: int = 1,
        heartbeat_interval: float = 0.5,
        driver_timeout: float = 60.0,
        parent_pid: int | None = None,
    ) -> None:
        self.executor_id = executor_id
        self._incarnation = secrets.randbits(63)
        self._heartbeat_interval = heartbeat_interval
        self._driver_timeout = driver_timeout
        self._parent_pid = parent_pid
        self._done = threading.Event()
        self.exit_code = 0
        self._last_contact = time.monotonic()
        self._last_sent = 0.0
        self._last_register = 0.0
        self._registered = False
        self._blocks_server = RequestServer(keys, block_host, block_port, self._serve_blocks)
        self._block_address = f"tcp://{advertise_host}:{self._blocks_server.port}"
        self._fetcher = RequestClient(keys)
        self.core = ExecutorCore(executor_id, self._send, self._fetch, self._put, cores)
        self.registry = CollectorRegistry()
        self._metrics = ExecutorMetrics(self.registry, executor_id, self.core.block_stats)
        self._metrics_server: MetricsServer | None = None
        if metrics_port is not None:
            self._metrics_server = MetricsServer(
                self.registry, block_host, metrics_port, metrics_access
            )
            log.info(
                "executor %s metrics at http://%s:%d/metrics",
                executor_id,
                advertise_host,
                self._metrics_server.port,
            )
        self._client = Client(
            keys,
            driver_address,
            executor_id,
            self._on_message,
            self._on_tick,
            tick=min(0.1, heartbeat_interval),
            name="executor-endpoint",
        )
        self._register()

    def _send(self, message: object) -> None:
        self._metrics.observe(message)
        self._client.send(message)

    def _register(self) -> None:
        self._last_register = time.monotonic()
        self._send(
            RegisterExecutor(
                self.executor_id,
                self._block_address,
                self.core.cores,
                self._incarnation,
                hash(HASH_PROBE_TEXT),
            )
        )

    def _serve_blocks(self, request: Any) -> BlocksFetched | BlockStored:
        if isinstance(request, PutBlock):
            stored = self.core.serve_put(request.block_id, request.blob)
            return BlockStored(request.block_id, stored)
        if not isinstance(request, FetchBlocks):
            return BlocksFetched(())
        return BlocksFetched(tuple(self.core.serve_fetch(b) for b in request.block_ids))

    def _put(self, location: ExecutorAddress, block_id: str, blob: bytes) -> bool:
        reply = self._fetcher.request(
            location.address,
            PutBlock(block_id, blob),
            lambda: self.core.is_lost(location.executor_id),
        )
        return bool(reply.stored)

    def _fetch(self, location: ExecutorAddress, block_ids: list[str]) -> list[bytes | None]:
        reply = self._fetcher.request(
            location.address,
            FetchBlocks(tuple(block_ids)),
            lambda: self.core.is_lost(location.executor_id),
        )
        return list(reply.blobs)

    def _on_message(self, message: Any) -> None:
        self._last_contact = time.monotonic()
        if isinstance(message, Heartbeat):
            if not self._registered:
                log.info("executor %s registered with the driver", self.executor_id)
                self._registered = True
                self.core.driver_connected()
        elif isinstance(message, RegistrationRefused):
            log.error("the driver refused executor %s: %s", self.executor_id, message.reason)
            self._finish(2)
        elif isinstance(message, Shutdown):
            log.info(
                "executor %s shutting down: %s",
                self.executor_id,
                message.reason or "asked by the driver",
            )
            self._finish(0)
        else:
            self.core.handle(message)

    def _on_tick(self) -> None:
        now = time.monotonic()
        silent = now - self._last_contact
        if silent > self._driver_timeout:
            log.error("no word from the driver for %.0f s; exiting", silent)
            self._finish(1)
            return
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            log.error("the local driver process is gone; exiting")
            self._finish(1)
            return
        if (
            silent > 3 * self._heartbeat_interval
            and now - self._last_register > 3 * self._heartbeat_interval
        ):
            self._registered = False
            self._register()
        if self._registered and now - self._last_sent >= self._heartbeat_interval:
            self._last_sent = now
            blocks, size = self.core.block_stats()
            self._send(Heartbeat(blocks, size))

    def _finish(self, code: int) -> None:
        self.exit_code = code
        self._done.set()

    def run(self) -> int:
        """Serve until shut down; returns the process exit code."""
        self._done.wait()
        if not self.core.stop(TASKS_STOP_WAIT):
            log.info("executor %s exits with a task still running user code", self.executor_id)
        resources.close_all()  # after the tasks: none is left writing through a closed client
        self._fetcher.close()
        self._client.close()
        self._blocks_server.close()
        if self._metrics_server is not None:
            self._metrics_server.close()
        return self.exit_code

    def stop(self) -> None:
        self._finish(0)
