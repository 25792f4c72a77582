"""kubestream benchmarks on this machine, written as JSON (never asserted in tests).

    .venv/bin/python benchmarks/throughput.py [--lines N] [--out benchmarks/results/latest.json]

Measures, with 2 executor processes: word-count throughput next to plain-Python
loops over the same files (one process; two worker processes) and PySpark
Structured Streaming local[2] when pyspark is installed; the processing time of
an empty batch; p50/p99 total delay at 20,000 lines/s with 100 ms batches;
resident memory of driver plus executors; start-up to the first batch result.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import operator
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubestream import StreamingContext
from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.driver.local_cluster import LocalExecutorProcesses
from kubestream.transport import CurveKeys, generate_keypair
from workload import count_words, make_lines, write_files

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Cluster:
    def __init__(self, executors: int = 2) -> None:
        self.keys = CurveKeys(*generate_keypair())
        self.engine = Engine()
        self.endpoint = DriverEndpoint(self.engine, self.keys, "127.0.0.1", 0)
        self.executors = LocalExecutorProcesses(executors, self.endpoint.port, self.keys)
        if not self.engine.wait_for_executors(executors, 30):
            raise RuntimeError("executors did not register")

    def rss_mb(self) -> float:
        pids = [os.getpid()] + [p.pid for p in self.executors.processes.values()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def close(self) -> None:
        self.engine.broadcast(Shutdown("benchmark done"))
        self.executors.stop()
        self.endpoint.close()


def kubestream_wordcount(cluster: Cluster, paths: list[Path], lines: int) -> dict[str, Any]:
    inbox = paths[0].parent.parent / "kubestream-in"
    inbox.mkdir()
    ssc = StreamingContext(2.0, engine=cluster.engine)
    totals: Counter[str] = Counter()
    counts = (
        ssc.text_file_stream(str(inbox))
        .flat_map(str.split)
        .map(lambda w: (w, 1))
        .reduce_by_key(operator.add)
    )
    counts.foreach_rdd(lambda rdd: totals.update(dict(rdd.collect())))
    ssc.start()
    time.sleep(0.3)
    for p in paths:
        os.link(p, inbox / p.name)
    deadline = time.monotonic() + 300
    while sum(totals.values()) < lines * 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    ssc.stop(stop_engine=False)
    busy = [
        b for b in ssc.batches if b.completed and b.processing_time and b.processing_time > 0.05
    ]
    seconds = sum(b.processing_time or 0 for b in busy)
    return {
        "records_per_second": lines / seconds,
        "seconds": seconds,
        "words": sum(totals.values()),
    }


def _count_chunk(paths: list[str]) -> Counter[str]:
    return count_words(paths)


def plain_python(paths: list[Path], lines: int, workers: int) -> dict[str, Any]:
    names = [str(p) for p in paths]
    started = time.perf_counter()
    if workers == 1:
        total = count_words(names)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            total = Counter()
            for part in pool.map(_count_chunk, [names[i::workers] for i in range(workers)]):
                total.update(part)
    seconds = time.perf_counter() - started
    return {"records_per_second": lines / seconds, "seconds": seconds, "words": sum(total.values())}


def pyspark_structured(paths: list[Path], lines: int) -> dict[str, Any]:
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - optional
        from pyspark.sql import functions as f  # noqa: PLC0415 - optional
    except ImportError:
        return {"skipped": "pyspark is not installed (pip install pyspark to include it)"}
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    inbox = paths[0].parent.parent / "spark-in"
    inbox.mkdir()
    counts = (
        spark.readStream.text(str(inbox))
        .select(f.explode(f.split("value", " ")).alias("word"))
        .groupBy("word")
        .count()
    )
    query = counts.writeStream.outputMode("update").format("memory").queryName("wc").start()
    for p in paths:
        os.link(p, inbox / p.name)
    query.processAllAvailable()
    seconds = (
        sum(
            p["durationMs"].get("triggerExecution", 0)
            for p in query.recentProgress
            if p["numInputRows"]
        )
        / 1000
    )
    query.stop()
    spark.stop()
    return {"records_per_second": lines / seconds, "seconds": seconds}


def empty_batches(cluster: Cluster, batches: int = 60) -> dict[str, Any]:
    ssc = StreamingContext(0.1, engine=cluster.engine)
    stream = ssc.queue_stream([], default=[])
    stream.flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(operator.add).foreach_rdd(
        lambda rdd: rdd.collect()
    )
    ssc.start()
    time.sleep(batches * 0.1 + 0.5)
    ssc.stop(stop_engine=False)
    times = [b.processing_time * 1000 for b in ssc.batches[5:] if b.processing_time is not None]
    return {"batches": len(times), "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def steady_rate(cluster: Cluster, rate: int = 20_000, seconds: float = 8.0) -> dict[str, Any]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()
    lines = make_lines(2000)

    def serve() -> None:
        conn, _ = server.accept()
        chunk = 200
        payload = ("\n".join(lines[:chunk]) + "\n").encode()
        interval = chunk / rate
        next_send = time.monotonic()
        while not stop.is_set():
            conn.sendall(payload)
            next_send += interval
            time.sleep(max(0.0, next_send - time.monotonic()))
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    ssc = StreamingContext(0.1, engine=cluster.engine)
    received = [0]
    words = ssc.socket_text_stream("127.0.0.1", port).flat_map(str.split)
    words.map(lambda w: (w, 1)).reduce_by_key(operator.add).foreach_rdd(
        lambda rdd: received.__setitem__(0, received[0] + len(rdd.collect()))
    )
    ssc.start()
    time.sleep(seconds)
    stop.set()
    ssc.stop(stop_engine=False, graceful=True, timeout=5)
    server.close()
    done = [b for b in ssc.batches if b.completed][10:]
    delays = [(b.total_delay or 0) * 1000 for b in done]
    sched = [(b.scheduling_delay or 0) * 1000 for b in done]
    records = sum(b.num_records for b in done)
    span = (done[-1].batch_time - done[0].batch_time) / 1000 + 0.1 if done else 1
    return {
        "target_lines_per_second": rate,
        "measured_lines_per_second": records / span,
        "batches": len(done),
        "total_delay_p50_ms": percentile(delays, 50),
        "total_delay_p99_ms": percentile(delays, 99),
        "scheduling_delay_p99_ms": percentile(sched, 99),
    }


def first_result() -> dict[str, Any]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestream",
            "run",
            str(ROOT / "benchmarks/apps/first_result.py"),
            "--batch-interval",
            "0.2",
            "--log-level",
            "ERROR",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seconds = None
    for line in process.stdout:
        if line.startswith("("):
            seconds = time.perf_counter() - started
            break
    process.terminate()
    process.wait(30)
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/latest.json"))
    parser.add_argument("--skip-pyspark", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kubestream-bench-"))
    paths = write_files(work / "source", make_lines(args.lines), args.files)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workload": {"lines": args.lines, "words_per_line": 10, "files": args.files},
    }
    results["plain_python_1_process"] = plain_python(paths, args.lines, 1)
    results["plain_python_2_processes"] = plain_python(paths, args.lines, 2)
    cluster = Cluster(2)
    try:
        results["kubestream_2_executors"] = kubestream_wordcount(cluster, paths, args.lines)
        results["rss_mb_driver_plus_2_executors"] = cluster.rss_mb()
        results["empty_batch"] = empty_batches(cluster)
        results["steady_20k_lines_per_second_100ms_batches"] = steady_rate(cluster)
    finally:
        cluster.close()
    results["start_to_first_result"] = first_result()
    if not args.skip_pyspark:
        results["pyspark_structured_streaming_local_2"] = pyspark_structured(paths, args.lines)
    floor = results["plain_python_2_processes"]["records_per_second"]
    results["kubestream_vs_plain_python_2_processes"] = (
        results["kubestream_2_executors"]["records_per_second"] / floor
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
