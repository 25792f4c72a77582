"""Starting `kubestream run` on a checkpoint directory, as the driver fault tests do."""

from __future__ import annotations

import subprocess
import sys
import time
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
