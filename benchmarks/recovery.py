"""Checkpoint cost per batch and recovery time after a driver kill -9, written as JSON.

.venv/bin/python benchmarks/recovery.py [--out benchmarks/results/recovery.json]
"""

from __future__ import annotations

import argparse
import json
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

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def checkpoint_cost(stateful: bool, keys: int = 5000, seconds: float = 6.0) -> dict[str, Any]:
    """Time spent in checkpointing after each batch (metadata always, state every batch)."""
    engine = Engine()
    executors = InProcessExecutors(engine, 2)
    directory = tempfile.mkdtemp(prefix="kubestream-ckpt-bench-")
    ssc = StreamingContext(0.2, checkpoint=directory, engine=engine, checkpoint_interval=0.2)
    pairs = ssc.rate_stream(20_000).map(lambda x: (x % keys, 1))
    if stateful:
        pairs.update_state_by_key(lambda vs, old: sum(vs) + (old or 0)).foreach_rdd(
            lambda rdd: None
        )
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
    return {
        "state_keys": keys if stateful else 0,
        "batches": len(samples),
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
    }


def recovery_time(runs: int = 3) -> dict[str, Any]:
    """From kill -9 of the driver to the first batch completed by the restarted driver."""
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
    seconds = []
    for run in range(runs):
        driver = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(4)
        (inbox / f"f{run}.txt").write_text("some words to count\n")
        time.sleep(1)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed = time.time()
        restarted = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        while True:
            fresh = [p for p in out.glob("totals-*") if p.stat().st_mtime > killed]
            if fresh:
                seconds.append(time.time() - killed)
                break
            time.sleep(0.01)
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(30)
    return {"runs": seconds, "median_seconds": sorted(seconds)[len(seconds) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/recovery.json"))
    args = parser.parse_args()
    results = {
        "checkpoint_cost_without_state": checkpoint_cost(stateful=False),
        "checkpoint_cost_with_state": checkpoint_cost(stateful=True),
        "recovery_after_driver_kill": recovery_time(),
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
