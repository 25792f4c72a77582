"""Starting `kubestream run` on a checkpoint directory, as the driver fault tests do."""

from __future__ import annotations

import subprocess
import sys
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
