"""Executor processes on this machine, for `kubestream run` (local mode) and integration tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from kubestream import settings
from kubestream.storage.checkpoint_store import state_key
from kubestream.transport import CurveKeys


class LocalExecutorProcesses:
    def __init__(
        self,
        count: int,
        driver_port: int,
        keys: CurveKeys,
        log_level: str = "WARNING",
        heartbeat_interval: float = 0.5,
        log_format: str = "text",
        read_access: str = settings.UI_READ_ACCESS.default,
        scrape_token_file: str | None = None,
        generation_file: str | None = None,
        executor_settings: Sequence[tuple[settings.Setting[Any], Any]] = (),
    ) -> None:
        self._driver_port = driver_port
        self._keys = keys
        self._log_level = log_level
        self._heartbeat_interval = heartbeat_interval
        self._log_format = log_format
        self._read_access = read_access
        self._scrape_token_file = scrape_token_file
        self._generation_file = generation_file
        self._executor_settings = tuple(executor_settings)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        for i in range(count):
            self.start(f"exec-{i + 1}")

    def start(self, executor_id: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(
            {
                settings.CURVE_PUBLIC_KEY.env: self._keys.public,
                settings.CURVE_SECRET_KEY.env: self._keys.secret,
                # The driver's key: `kubestream run` makes a new CURVE pair each time, but
                # its checkpoints and write-ahead log must verify across runs.
                settings.STATE_KEY.env: state_key().hex(),
                "PYTHONHASHSEED": "0",
            }
        )
        flags: list[tuple[settings.Setting[Any], Any]] = [
            (settings.DRIVER_HOST, "127.0.0.1"),
            (settings.DRIVER_PORT, self._driver_port),
            (settings.EXECUTOR_ID, executor_id),
            (settings.ADVERTISE_HOST, "127.0.0.1"),
            (settings.BLOCK_HOST, "127.0.0.1"),
            (settings.BLOCK_PORT, 0),
            (settings.HEARTBEAT_INTERVAL, self._heartbeat_interval),
            (settings.DRIVER_TIMEOUT, 30.0),
            (settings.PARENT_PID, os.getpid()),
            (settings.LOG_LEVEL, self._log_level),
            (settings.LOG_FORMAT, self._log_format),
            # Several executors share this machine: each takes a free metrics port.
            (settings.METRICS_PORT, 0),
            # Their /metrics is read as the driver's is (a scrape token in env comes along).
            (settings.UI_READ_ACCESS, self._read_access),
            *self._executor_settings,
        ]
        if self._scrape_token_file is not None:
            flags.append((settings.UI_SCRAPE_TOKEN_FILE, self._scrape_token_file))
        if self._generation_file is not None:
            flags.append((settings.UI_TOKEN_GENERATION_FILE, self._generation_file))
        command = [sys.executable, "-m", "kubestream", "executor", *settings.arguments(flags)]
        process = subprocess.Popen(command, env=env)
        self.processes[executor_id] = process
        return process

    def kill(self, executor_id: str) -> None:
        """kill -9, as a crash would."""
        process = self.processes.pop(executor_id)
        process.kill()
        process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
