"""Starting `kubestream run` on a checkpoint directory, as the driver fault tests do."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO


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
