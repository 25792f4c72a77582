"""Checkpoint cost per batch and recovery time after a driver kill -9, written as JSON.

.venv/bin/python benchmarks/recovery.py [--runs 3] [--only checkpoints|recovery] [--note TEXT]
        [--out benchmarks/results/recovery.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubestream import StreamingContext
from kubestream.core.engine import Engine
from kubestream.executor.in_process import InProcessExecutors
from kubestream.streaming.batch import BatchInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stateful import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def checkpoint_cost(
    stateful: bool, keys: int = 5000, rate: int = 20_000, seconds: float = 6.0
) -> dict[str, Any]:
    """Time spent in checkpointing after each batch (metadata always, state every batch),
    and the bytes of the state checkpoints. The state starts with every key (so it holds
    `keys` throughout); each 0.2 s batch adds to the keys its rate * 0.2 records reach."""
    engine = Engine()
    executors = InProcessExecutors(engine, 2)
    directory = tempfile.mkdtemp(prefix="kubestream-ckpt-bench-")
    ssc = StreamingContext(0.2, checkpoint=directory, engine=engine, checkpoint_interval=0.2)
    pairs = ssc.rate_stream(rate).map(lambda x: (x % keys, 1))
    if stateful:
        pairs.update_state_by_key(
            lambda vs, old: sum(vs) + (old or 0), initial=[(k, 0) for k in range(keys)]
        ).foreach_rdd(lambda rdd: None)
    else:
        pairs.reduce_by_key(lambda a, b: a + b).foreach_rdd(lambda rdd: rdd.count())
    checkpointer = ssc._checkpointer
    assert checkpointer is not None
    timings: list[float] = []
    original = checkpointer.batch_completed

    def timed(info: BatchInfo, pending: list[int], force_data: bool = False) -> None:
        started = time.perf_counter()
        original(info, pending, force_data)
        timings.append((time.perf_counter() - started) * 1000)

    checkpointer.batch_completed = timed  # type: ignore[method-assign]
    ssc.start()
    time.sleep(seconds)
    ssc.stop(stop_engine=False)
    executors.stop()
    samples = timings[3:]
    sizes = {
        kind: [p.stat().st_size for p in Path(directory).glob(f"{kind}-*")]
        for kind in ("state", "state_delta")
    }
    return {
        "state_keys": keys if stateful else 0,
        "records_per_batch": round(rate * 0.2),
        "batches": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "full_checkpoint_bytes": max(sizes["state"], default=0),
        "delta_checkpoint_bytes_p50": percentile(sizes["state_delta"], 50)
        if sizes["state_delta"]
        else None,
    }


def _tree(pid: int) -> list[int]:
    """pid and its descendants (the driver of `kubestream run` and its executors)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def _totals(out: Path, newer_than: float) -> dict[str, int] | None:
    """The newest running totals written after `newer_than` (epoch s), if any."""
    fresh = [p for p in out.glob("totals-*/_SUCCESS") if p.stat().st_mtime > newer_than]
    if not fresh:
        return None
    newest = max(fresh, key=lambda p: int(p.parent.name.split("-")[1]))
    totals: dict[str, int] = {}
    for part in newest.parent.glob("part-*"):
        for line in part.read_text().splitlines():
            word, count = ast.literal_eval(line)
            totals[word] = count
    return totals


def _wait_for(check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.01)
    raise TimeoutError("the job did not produce the expected output in time")


def recovery_time(runs: int = 3) -> dict[str, Any]:
    """From kill -9 of the driver (its state holding every file so far) to the first batch
    result of the restarted driver: wall seconds, and CPU seconds of the restarted driver
    and executors by then (steadier than wall clock on a shared machine); and to the
    first result holding every file's words (caught up: the state was recovered)."""
    work = Path(tempfile.mkdtemp(prefix="kubestream-recovery-bench-"))
    inbox, out, checkpoint = work / "in", work / "out", work / "checkpoint"
    inbox.mkdir()
    command = [
        sys.executable,
        "-m",
        "kubestream",
        "run",
        str(ROOT / "examples/stateful_wordcount.py"),
        "--batch-interval",
        "0.5",
        "--checkpoint",
        str(checkpoint),
        "--log-level",
        "ERROR",
        "--",
        "--dir",
        str(inbox),
        "--out",
        str(out),
    ]
    measured: list[dict[str, float]] = []
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        # Files there when the stream starts are not read: drop the first once it runs.
        _wait_for(lambda: any(out.glob("counts-*/_SUCCESS")))
        for run in range(runs):
            dropped = time.time()
            (inbox / f"f{run}.txt").write_text("some words to count\n")
            _wait_for(lambda d=dropped, n=run + 1: (_totals(out, d) or {}).get("count") == n)
            load = os.getloadavg()[0]
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            killed = time.time()
            driver = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            _wait_for(lambda k=killed: _totals(out, k))
            seconds = time.time() - killed
            cpu = cpu_seconds(_tree(driver.pid))
            # The batches since the last data checkpoint run again first; then the
            # totals hold every file: the state was recovered, not started afresh.
            _wait_for(lambda k=killed, n=run + 1: (_totals(out, k) or {}).get("count") == n)
            measured.append(
                {
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "caught_up_seconds": time.time() - killed,
                    "load_average_at_kill": load,
                }
            )
    finally:
        driver.send_signal(signal.SIGTERM)
        driver.wait(60)
    seconds = sorted(m["seconds"] for m in measured)
    cpu = sorted(m["cpu_seconds"] for m in measured)
    return {
        "runs": measured,
        "median_seconds": seconds[len(seconds) // 2],
        "median_cpu_seconds": cpu[len(cpu) // 2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recovery.json"))
    parser.add_argument("--runs", type=int, default=3, help="driver kills")
    parser.add_argument("--only", choices=["checkpoints", "recovery"], default=None)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. machine load)")
    args = parser.parse_args()
    results: dict[str, Any] = {"note": args.note, "load_average_at_start": os.getloadavg()}
    if args.only in (None, "checkpoints"):
        results["checkpoint_cost_without_state"] = checkpoint_cost(stateful=False)
        results["checkpoint_cost_with_state"] = checkpoint_cost(stateful=True)
        results["checkpoint_cost_large_state_few_changes"] = checkpoint_cost(
            stateful=True, keys=200_000, rate=5_000
        )
    if args.only in (None, "recovery"):
        results["recovery_after_driver_kill"] = recovery_time(args.runs)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
