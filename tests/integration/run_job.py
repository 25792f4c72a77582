"""Starting `kubestream run` on a checkpoint directory, as the driver fault tests do, or a
driver and executors as separate processes (SeparateJob), as pods run them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from kubestream.transport import generate_keypair
from tests.brokers import free_port


def start_checkpointed(
    app: Path,
    checkpoint: Path,
    flags: list[str],
    app_args: list[str],
    stderr: IO[str] | int,
) -> subprocess.Popen[str]:
    """`kubestream run APP --batch-interval 0.5 --checkpoint DIR FLAGS -- APP_ARGS`."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestream",
            "run",
            str(app),
            "--batch-interval",
            "0.5",
            "--checkpoint",
            str(checkpoint),
            "--log-level",
            "WARNING",
            *flags,
            "--",
            *app_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )


def wait_until_processing(checkpoint: Path, log: Path, first: bool) -> None:
    """Until the driver runs batches, so a kill falls on work, not on start-up: the first one
    has written a checkpoint, a later one has logged that it recovered from it."""

    def running() -> bool:
        if first:
            return bool(list(checkpoint.glob("metadata-*")))
        return "recovered from checkpoint" in log.read_text()

    deadline = time.monotonic() + 60
    while not running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running(), f"the driver never started: {log.read_text()[-2000:]}"


def children(pid: int) -> list[int]:
    """The child processes of `pid` (a local driver's executors)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def kill_and_recover(
    start: Callable[..., subprocess.Popen[str]],
    checkpoint: Path,
    logs: Path,
    rng: random.Random,
    fed: threading.Event,
    final_seconds: float,
) -> str:
    """Kill -9 the driver three times mid-work (and an executor in the second run), then run
    it `final_seconds` more once `fed` is set; returns the final run's stderr.
    `start(log, *flags)` starts the job on `checkpoint`, its stderr going to `log`."""
    for attempt in range(3):
        log = logs / f"driver-{attempt}.log"
        driver = start(log)
        wait_until_processing(checkpoint, log, first=attempt == 0)
        if attempt == 1:
            time.sleep(rng.uniform(0.5, 1.5))
            executors = children(driver.pid)
            assert executors, "the driver has no executor processes"
            subprocess.run(["kill", "-9", str(executors[-1])], check=True)
        time.sleep(rng.uniform(0.5, 2.5))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert fed.wait(120)
    log = logs / "driver-final.log"
    final = start(log, "--duration", str(final_seconds))
    final.wait(timeout=180)
    stderr = log.read_text()
    assert final.returncode == 0, stderr[-3000:]
    assert "recovered from checkpoint" in stderr
    return stderr


class SeparateJob:
    """A job as pods run it: `kubestream driver` processes started one after another on one
    address and checkpoint (TMP/checkpoint, write-ahead log on), and `kubestream executor`
    processes that only know that address, so they outlive a driver killed -9. Logs go to
    TMP/<name>.log."""

    def __init__(self, tmp_path: Path, app: Path, app_args: str, env: dict[str, str]) -> None:
        public, secret = generate_keypair()
        self.env = dict(
            os.environ,
            KUBESTREAM_CURVE_PUBLIC_KEY=public,
            KUBESTREAM_CURVE_SECRET_KEY=secret,
            **env,
        )
        self.tmp = tmp_path
        self.app = app
        self.port = free_port()
        self.app_args = app_args
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, log: Path, *args: str) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubestream", *args], env=self.env, stdout=out, stderr=out
            )
        self.procs.append(proc)
        return proc

    def driver(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        return self._spawn(
            self.tmp / f"{name}.log",
            "driver",
            "--app",
            str(self.app),
            "--app-args",
            self.app_args,
            "--host",
            "127.0.0.1",
            "--driver-port",
            str(self.port),
            "--ui-port",
            "0",
            "--batch-interval",
            "0.5",
            "--checkpoint",
            str(self.tmp / "checkpoint"),
            "--checkpoint-interval",
            "1.5",
            "--write-ahead-log",
            "--log-level",
            "WARNING",
            *extra,
        )

    def executor(self, executor_id: str) -> subprocess.Popen[bytes]:
        return self._spawn(
            self.tmp / f"executor-{executor_id}.log",
            "executor",
            "--executor-id",
            executor_id,
            "--driver-host",
            "127.0.0.1",
            "--driver-port",
            str(self.port),
            "--advertise-host",
            "127.0.0.1",
            "--block-host",
            "127.0.0.1",
            "--block-port",
            "0",
            "--metrics-port",
            "0",
        )

    def wait_registered(self, executor_ids: list[str]) -> None:
        """Until each executor logged that it registered with a driver."""

        def registered(executor_id: str) -> bool:
            log = self.tmp / f"executor-{executor_id}.log"
            return "registered with the driver" in log.read_text()

        deadline = time.monotonic() + 60
        while not all(map(registered, executor_ids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(map(registered, executor_ids)), "the executors never registered"

    def wait_processing(self, name: str, first: bool) -> None:
        """Until the driver runs batches: it wrote a checkpoint, or recovered from one."""
        log = self.tmp / f"{name}.log"

        def running() -> bool:
            if first:
                return bool(list((self.tmp / "checkpoint").glob("metadata-*")))
            return "recovered from checkpoint" in log.read_text()

        deadline = time.monotonic() + 60
        while not running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(), f"the driver never ran: {log.read_text()[-2000:]}"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
