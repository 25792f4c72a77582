"""`make demo`: a real word count in local mode, fed by files dropped into a directory.

Starts `kubestream run examples/wordcount.py` (driver plus 2 executor processes
over CURVE ZeroMQ) on a temporary directory, writes a few lines of text into it
every half second, and stops gracefully after ten seconds.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LINES = [
    "to be or not to be that is the question",
    "whether tis nobler in the mind to suffer",
    "the slings and arrows of outrageous fortune",
    "or to take arms against a sea of troubles",
]


def feed(directory: Path, stop: threading.Event) -> None:
    for n in itertools.count():
        if stop.wait(0.5):
            return
        staged = directory / f".chunk-{n}"
        staged.write_text("\n".join(LINES[n % len(LINES) :] + LINES[: n % len(LINES)]) + "\n")
        staged.rename(directory / f"chunk-{n}.txt")


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="kubestream-demo-"))
    inbox, out = root / "in", root / "out" / "counts"
    inbox.mkdir()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(inbox, stop), daemon=True)
    feeder.start()
    command = [
        sys.executable,
        "-m",
        "kubestream",
        "run",
        "examples/wordcount.py",
        "--executors",
        "2",
        "--batch-interval",
        "1",
        "--duration",
        "10",
        "--",
        "--dir",
        str(inbox),
        "--out",
        str(out),
    ]
    print("$", " ".join(command), flush=True)
    started = time.monotonic()
    code = subprocess.call(command)
    stop.set()
    print(f"\nran {time.monotonic() - started:.1f} s; per-batch output in {out.parent}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
