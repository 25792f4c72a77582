"""Soak: a stateful job at steady load for a while; are memory, blocks and checkpoints flat?

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--out benchmarks/results/soak.json]

Workload (issue 17): `kubestream run` with 2 executor processes and a checkpoint
directory runs benchmarks/apps/soak_app.py, a word count whose running totals are
kept by update_state_by_key; a socket server here sends LINES lines of 10 words
(uniform over KEYS distinct words, so the key set is stable after a few seconds)
every EVERY seconds; batches last one second.

Every SAMPLE seconds it records the driver's and each executor's resident memory,
threads and open files (from /proc), the blocks and block bytes each executor holds
(the driver's status document), the bytes under the checkpoint directory, and the
job's batch counts. The JSON holds every sample, and per quantity the least-squares
slope per minute over the samples after the warm-up (the first minute, or the
first fifth of a shorter run), which is what "flat" means: a leak shows as a slope
that does not go away with a longer run. The machine's load average is recorded,
since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "benchmarks" / "apps" / "soak_app.py"
UI_LINE = re.compile(r"Streaming UI at (http://\S+)")


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of value over time (seconds), per minute; None under 2 points."""
    try:
        slope = statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
    except statistics.StatisticsError:
        return None
    return 60 * slope


def proc_status(pid: int) -> dict[str, float]:
    """Resident MB, threads and open files of one process (empty once it is gone)."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        open_files = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return {}
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "open_files": open_files,
    }


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return sorted(int(p) for p in path.read_text().split()) if path.exists() else []


def directory_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


class Feeder:
    """A TCP server sending `lines` lines of 10 words every `every` seconds to each
    connection (the job's socket receiver; it may reconnect)."""

    def __init__(self, keys: int, lines: int, every: float) -> None:
        self.words = [f"w{i}" for i in range(keys)]
        self.lines, self.every = lines, every
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sent = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._send, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket) -> None:
        rng = random.Random(17)
        next_at = time.monotonic()
        with conn:
            while not self._stop.is_set():
                text = "".join(
                    " ".join(rng.choices(self.words, k=10)) + "\n" for _ in range(self.lines)
                )
                try:
                    conn.sendall(text.encode())
                except OSError:
                    return
                self.sent += self.lines
                next_at += self.every
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        self._stop.set()
        self.server.close()


def status(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url + "api/v1/status?batches=0", timeout=5) as response:
            doc: dict[str, Any] = json.load(response)
            return doc
    except (OSError, ValueError):
        return None


def wait_for_ui(log: Path, driver: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and driver.poll() is None:
        found = UI_LINE.search(log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise SystemExit(f"the driver never served its UI:\n{log.read_text()[-3000:]}")


def sample(driver: int, url: str, checkpoint: Path, started: float) -> dict[str, Any]:
    doc = status(url) or {}
    executors = [proc_status(pid) for pid in children(driver)]
    reported = doc.get("executors") or []
    return {
        "t": round(time.monotonic() - started, 2),
        "driver": proc_status(driver),
        "executors": executors,
        "blocks": [e.get("blocks") for e in reported],
        "block_bytes": [e.get("memory_bytes") for e in reported],
        "checkpoint_bytes": directory_bytes(checkpoint),
        "batches": doc.get("totals"),
        "pending_batches": (doc.get("summary") or {}).get("pending_batches"),
        "processing_ratio": (doc.get("summary") or {}).get("processing_ratio"),
        "loadavg_1m": os.getloadavg()[0],
    }


def _sum(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return float(sum(numbers)) if numbers else None


SERIES = {
    "driver_rss_mb": lambda s: s["driver"].get("rss_mb"),
    "executors_rss_mb": lambda s: _sum([e.get("rss_mb") for e in s["executors"]]),
    "driver_threads": lambda s: s["driver"].get("threads"),
    "executors_threads": lambda s: _sum([e.get("threads") for e in s["executors"]]),
    "driver_open_files": lambda s: s["driver"].get("open_files"),
    "executors_open_files": lambda s: _sum([e.get("open_files") for e in s["executors"]]),
    "blocks": lambda s: _sum(s["blocks"]),
    "block_bytes": lambda s: _sum(s["block_bytes"]),
    "checkpoint_bytes": lambda s: s["checkpoint_bytes"],
}


def summarise(samples: list[dict[str, Any]], warmup: float) -> dict[str, Any]:
    steady = [s for s in samples if s["t"] >= warmup]
    out: dict[str, Any] = {}
    for name, get in SERIES.items():
        points = [(s["t"], get(s)) for s in steady if get(s) is not None]
        values = [v for _, v in points]
        out[name] = {
            "slope_per_minute": slope_per_minute(points),
            "first": values[0] if values else None,
            "last": values[-1] if values else None,
            "max": max(values) if values else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the job runs")
    parser.add_argument("--keys", type=int, default=20_000, help="distinct words")
    parser.add_argument("--lines", type=int, default=2_000, help="lines sent each tick")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between ticks")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak.json"))
    args = parser.parse_args()

    seconds = args.minutes * 60
    warmup = min(60.0, seconds / 5)
    feeder = Feeder(args.keys, args.lines, args.every)
    load_start = os.getloadavg()
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubestream-soak-") as work:
        checkpoint = Path(work) / "checkpoint"
        log = Path(work) / "driver.log"
        with log.open("w") as stderr:
            driver = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kubestream",
                    "run",
                    str(APP),
                    "--executors",
                    "2",
                    "--batch-interval",
                    "1",
                    "--checkpoint",
                    str(checkpoint),
                    "--ui-port",
                    "0",
                    "--log-level",
                    "WARNING",
                    "--",
                    "127.0.0.1",
                    str(feeder.port),
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            url = wait_for_ui(log, driver)
            started = time.monotonic()
            while time.monotonic() - started < seconds and driver.poll() is None:
                samples.append(sample(driver.pid, url, checkpoint, started))
                time.sleep(max(0.0, args.sample - (time.monotonic() - started) % args.sample))
            samples.append(sample(driver.pid, url, checkpoint, started))
        finally:
            driver.send_signal(signal.SIGTERM)
            try:
                code = driver.wait(60)
            except subprocess.TimeoutExpired:
                driver.kill()
                code = driver.wait()
            feeder.close()
        errors = [line for line in log.read_text().splitlines() if "ERROR" in line][:20]
    last = samples[-1]["batches"] or {}
    result = {
        "benchmark": "soak",
        "workload": {
            "minutes": args.minutes,
            "keys": args.keys,
            "lines_per_tick": args.lines,
            "words_per_line": 10,
            "tick_seconds": args.every,
            "batch_interval_seconds": 1.0,
            "executors": 2,
            "sample_seconds": args.sample,
            "warmup_seconds": warmup,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_at_start": load_start,
            "loadavg_at_end": os.getloadavg(),
            "loadavg_1m_mean": sum(s["loadavg_1m"] for s in samples) / len(samples),
            "note": "a shared machine: other jobs ran beside this one",
        },
        "lines_sent": feeder.sent,
        "batches": last,
        "driver_exit_code": code,
        "driver_errors": errors,
        "steady_state": summarise(samples, warmup),
        "samples": samples,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("batches", "machine", "steady_state")}, indent=1))


if __name__ == "__main__":
    main()
