"""Stateful word count as users run it, next to plain Python and PySpark, written as JSON.

    .venv/bin/python benchmarks/stateful.py [--small] [--out benchmarks/results/stateful.json]

Workload (issue 16): LINES lines of 10 words from a 50,000-word Zipf vocabulary, in
FILES files, one file per batch; each batch adds its counts to a running total per
word and delivers the updated (word, total) pairs to the driver. Wall clock from
the first file to the last result. Contenders, in one run on the same files:

- plain Python, one process: Counter per file + running dict;
- plain Python, two worker processes counting files, the parent merging in order;
- kubestream, 2 executor processes: update_state_by_key (delivers the whole state
  every batch, Spark's semantics) and map_with_state after reduce_by_key (delivers
  one (word, total) per word of the batch), each after `map(lambda w: (w, 1))` and
  reduce_by_key; then, as a second line, update_state_by_key after count_by_value;
- PySpark Structured Streaming local[2], groupBy count in update mode, foreachBatch
  collecting to the driver (when pyspark is installed: pip install pyspark).

Then latency: lines from a socket at 20,000 lines/s with 500 ms and 100 ms batches,
and 100 lines/s with 100 ms batches (the fixed cost of a batch): total delay (batch
end to result) p50/p99/max over `--latency-batches` batches after a 2 s warm-up (default
100, so p99 is not simply the slowest batch), and plain Python's processing time of the
same number of batches. Latency is measured `--latency-runs` times (default 3), the
configurations interleaved; each figure is the median over the runs, which are kept
beside it. Peak RSS is sampled over each contender's process tree; CPU seconds are the
processes' user + system time.
`--small` runs 400,000 lines in 8 files (same file size) and one latency run of 30 batches,
to fit a few minutes on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import operator
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubestream import StateSpec, StreamingContext
from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.driver.local_cluster import LocalExecutorProcesses
from kubestream.transport import CurveKeys, generate_keypair
from zipf_workload import add_to_totals, batch_counts, write_zipf_files

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP_SECONDS = 2.0
"""Latency runs leave out the batches of their first seconds (connections, first state)."""
THROUGHPUT_BATCH_INTERVAL = 0.1
"""The shortest batch interval kubestream takes. One file a batch then caps a run at a
file's lines per interval (500,000 lines/s for 50,000-line files), however fast the
batches are processed: the JSON gives that ceiling and the lines per second of batch
processing (its `busy_seconds`) beside the wall-clock figure."""


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- process-tree accounting --------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    tree, out, stack = _children(), [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(tree.get(pid, []))
    return out


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class PeakRss:
    """Samples the summed RSS of a process tree every 50 ms while in use."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self._pids()))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run fn in a fresh process, sampling its tree's peak RSS."""
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    process = ctx.Process(target=_child_main, args=(results, fn, args))
    process.start()
    assert process.pid is not None
    pid = process.pid
    with PeakRss(lambda: process_tree(pid)) as peak:
        result: dict[str, Any] = results.get()
        process.join()
    result["peak_rss_mb"] = peak.peak
    return result


def _child_main(results: Any, fn: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    try:
        results.put(fn(*args))
    except Exception as exc:  # reported in the JSON rather than lost in a child's stderr
        results.put({"error": repr(exc)})


# --- plain Python -------------------------------------------------------------------------
def plain_python(names: list[str], workers: int) -> dict[str, Any]:
    totals: dict[str, int] = {}
    delivered = 0
    started = time.perf_counter()
    if workers == 1:
        for name in names:
            delivered += len(add_to_totals(totals, batch_counts(name)))
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for counts in pool.imap(batch_counts, names):
                delivered += len(add_to_totals(totals, counts))
    seconds = time.perf_counter() - started
    times = os.times()
    return {
        "seconds": seconds,
        "delivered_pairs": delivered,
        "words": sum(totals.values()),
        "keys": len(totals),
        "cpu_seconds": times.user + times.system + times.children_user + times.children_system,
    }


# --- PySpark ------------------------------------------------------------------------------
def pyspark_structured(names: list[str], work: str) -> dict[str, Any]:
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - optional
        from pyspark.sql import functions as f  # noqa: PLC0415 - optional
    except ImportError:
        return {"skipped": "pyspark is not installed (pip install pyspark to include it)"}
    import pyspark  # noqa: PLC0415 - optional

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    inbox = Path(work) / "spark-in"
    inbox.mkdir()
    delivered = [0]
    totals: dict[str, int] = {}
    last = [0.0]

    def deliver(frame: Any, _batch_id: int) -> None:
        rows = frame.collect()
        delivered[0] += len(rows)
        totals.update((r["word"], r["count"]) for r in rows)
        last[0] = time.perf_counter()

    counts = (
        spark.readStream.option("maxFilesPerTrigger", 1)
        .text(str(inbox))
        .select(f.explode(f.split("value", " ")).alias("word"))
        .groupBy("word")
        .count()
    )
    query = counts.writeStream.outputMode("update").foreachBatch(deliver).start()
    started = time.perf_counter()
    for name in names:
        os.link(name, inbox / Path(name).name)
    query.processAllAvailable()
    query.stop()
    spark.stop()
    times = os.times()
    return {
        "version": pyspark.__version__,
        "seconds": last[0] - started,
        "delivered_pairs": delivered[0],
        "words": sum(totals.values()),
        "keys": len(totals),
        "cpu_seconds_python_only": times.user + times.system,
    }


# --- kubestream ---------------------------------------------------------------------------
class Cluster:
    def __init__(self, executors: int = 2) -> None:
        self.keys = CurveKeys(*generate_keypair())
        self.engine = Engine()
        self.endpoint = DriverEndpoint(self.engine, self.keys, "127.0.0.1", 0)
        self.executors = LocalExecutorProcesses(executors, self.endpoint.port, self.keys)
        if not self.engine.wait_for_executors(executors, 30):
            raise RuntimeError("executors did not register")

    def pids(self) -> list[int]:
        return [os.getpid()] + [p.pid for p in self.executors.processes.values()]

    def close(self) -> None:
        self.engine.broadcast(Shutdown("benchmark done"))
        self.executors.stop()
        self.endpoint.close()


def add_running_total(key: str, value: int, state: Any) -> tuple[str, int]:
    total = state.get_option(0) + value
    state.update(total)
    return key, total


def running_sum(new: list[int], old: int | None) -> int:
    return sum(new) + (old or 0)


def stateful_stream(stream: Any, op: str) -> Any:
    """op: update_state_by_key or map_with_state after `map(lambda w: (w, 1))` and
    reduce_by_key, as Spark's guide counts words; `update_state_by_key_count_by_value`
    after count_by_value instead (counted with a Counter a partition)."""
    words = stream.flat_map(str.split)
    if op == "update_state_by_key_count_by_value":
        return words.count_by_value().update_state_by_key(running_sum)
    counts = words.map(lambda w: (w, 1)).reduce_by_key(operator.add)
    if op == "update_state_by_key":
        return counts.update_state_by_key(running_sum)
    return counts.map_with_state(StateSpec.of(add_running_total))


def kubestream_stateful(cluster: Cluster, names: list[str], work: str, op: str) -> dict[str, Any]:
    inbox = Path(work) / f"kubestream-{op}"
    inbox.mkdir()
    ssc = StreamingContext(THROUGHPUT_BATCH_INTERVAL, engine=cluster.engine)
    source = ssc.text_file_stream(str(inbox))
    totals: dict[str, int] = {}
    delivered = [0]
    last = [0.0]

    def deliver(rdd: Any) -> None:
        pairs = rdd.collect()
        delivered[0] += len(pairs)
        if op.startswith("update_state_by_key"):  # the whole state, every batch
            totals.clear()
        totals.update(pairs)
        last[0] = time.perf_counter()

    stateful_stream(source, op).foreach_rdd(deliver)
    expected = 0
    for name in names:
        with open(name, encoding="utf-8") as f:
            expected += sum(len(line.split()) for line in f)
    cpu_before = cpu_seconds(cluster.pids())
    ssc.start()
    time.sleep(0.3)
    with PeakRss(cluster.pids) as peak:
        started = time.perf_counter()
        for name in names:
            target = inbox / Path(name).name
            os.utime(name)  # modified now: the source ignores files older than its window
            os.link(name, target)
            while str(target) not in source.remembered:  # one file per batch
                time.sleep(0.002)
        deadline = time.monotonic() + 1800
        while (
            sum(totals.values()) < expected
            and not any(b.failed for b in ssc.batches)
            and time.monotonic() < deadline
        ):
            time.sleep(0.01)
    ssc.stop(stop_engine=False)
    failed = {
        b.batch_time: b.errors[0][-600:]
        for b in ssc.batches
        if b.failed and "streaming context stopped" not in b.errors[0]
    }
    return {
        "seconds": last[0] - started,
        "delivered_pairs": delivered[0],
        "words": sum(totals.values()),
        "keys": len(totals),
        "failed_batches": failed,
        "busy_seconds": sum(b.processing_time or 0 for b in ssc.batches if b.completed),
        "cpu_seconds": cpu_seconds(cluster.pids()) - cpu_before,
        "peak_rss_mb": peak.peak,
        "final_totals": totals,
    }


def _serve_lines(server: socket.socket, lines: list[str], rate: int, stop: threading.Event) -> None:
    conn, _ = server.accept()
    chunk = max(1, rate // 100)
    position = 0
    next_send = time.monotonic()
    while not stop.is_set():
        batch = [lines[(position + i) % len(lines)] for i in range(chunk)]
        position += chunk
        try:
            conn.sendall(("\n".join(batch) + "\n").encode())
        except OSError:
            break
        next_send += chunk / rate
        time.sleep(max(0.0, next_send - time.monotonic()))
    conn.close()


def kubestream_latency(
    cluster: Cluster, lines: list[str], op: str, rate: int, interval: float, batches: int
) -> dict[str, Any]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    threading.Thread(target=_serve_lines, args=(server, lines, rate, stop), daemon=True).start()
    ssc = StreamingContext(interval, engine=cluster.engine)
    stream = ssc.socket_text_stream("127.0.0.1", server.getsockname()[1])
    stateful_stream(stream, op).foreach_rdd(lambda rdd: rdd.collect())
    ssc.start()
    time.sleep(WARM_UP_SECONDS + (batches + 1) * interval)
    stop.set()
    ssc.stop(stop_engine=False, graceful=True, timeout=10)
    server.close()
    ran = ssc.batches
    warm = ran[0].batch_time + round(WARM_UP_SECONDS * 1000) if ran else 0
    generated = [b for b in ran if b.batch_time >= warm]
    done = [b for b in generated if b.completed]
    delays = [(b.total_delay or 0) * 1000 for b in done]
    processing = [(b.processing_time or 0) * 1000 for b in done]
    span = (done[-1].batch_time - done[0].batch_time) / 1000 + interval if done else 1.0
    return {
        "batches_generated": len(generated),
        "batches_completed": len(done),
        "measured_lines_per_second": sum(b.num_records for b in done) / span,
        "total_delay_p50_ms": percentile(delays, 50),
        "total_delay_p99_ms": percentile(delays, 99),
        "total_delay_max_ms": max(delays, default=None),
        "processing_time_p50_ms": percentile(processing, 50),
        "processing_time_p99_ms": percentile(processing, 99),
    }


def median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over runs (latency on a shared 2-core VM drifts from run to run),
    with the runs themselves."""
    if len(results) == 1:
        return results[0]
    median = {
        key: statistics.median(r[key] for r in results)
        for key, value in results[0].items()
        if isinstance(value, int | float) and all(r.get(key) is not None for r in results)
    }
    return {**median, "runs": results}


def plain_latency(lines: list[str], rate: int, interval: float, batches: int) -> dict[str, Any]:
    """Processing time of each batch's lines (no scheduling): the floor of result latency."""
    per_batch = max(1, round(rate * interval))
    totals: dict[str, int] = {}
    times = []
    for b in range(batches):
        chunk = [lines[(b * per_batch + i) % len(lines)] for i in range(per_batch)]
        started = time.perf_counter()
        counts: Counter[str] = Counter()
        for line in chunk:
            counts.update(line.split())
        add_to_totals(totals, counts)
        times.append((time.perf_counter() - started) * 1000)
    return {"processing_time_p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument(
        "--latency-batches", type=int, default=100, help="batches measured per latency run"
    )
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=3,
        help="latency runs, interleaved; each figure is the median over them (runs kept)",
    )
    parser.add_argument("--small", action="store_true", help="400,000 lines in 8 files")
    parser.add_argument("--skip-pyspark", action="store_true")
    parser.add_argument("--only", choices=["throughput", "latency"], default=None)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. machine load)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/stateful.json"))
    args = parser.parse_args()
    if args.small:
        args.lines, args.files, args.latency_batches, args.latency_runs = 400_000, 8, 30, 1

    work = tempfile.mkdtemp(prefix="kubestream-stateful-")
    paths = write_zipf_files(Path(work) / "source", args.lines, args.files)
    names = [str(p) for p in paths]
    with open(names[0], encoding="utf-8") as f:
        sample = f.read().splitlines()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "note": args.note,
        },
        "workload": {
            "lines": args.lines,
            "files": args.files,
            "words_per_line": 10,
            "vocabulary": 50_000,
            "distribution": "Zipf, exponent 1",
        },
    }
    throughput: dict[str, Any] = {}
    if args.only in (None, "throughput"):
        throughput["plain_python_1_process"] = in_child(plain_python, names, 1)
        throughput["plain_python_2_processes"] = in_child(plain_python, names, 2)
    cluster = Cluster(2)
    latency: dict[str, Any] = {}
    try:
        if args.only in (None, "throughput"):
            reference: dict[str, int] = {}
            for name in names:
                add_to_totals(reference, batch_counts(name))
            for op in (
                "update_state_by_key",
                "map_with_state",
                "update_state_by_key_count_by_value",
            ):
                run = kubestream_stateful(cluster, names, work, op)
                run["exact"] = run.pop("final_totals") == reference
                throughput[f"kubestream_2_executors_{op}"] = run
        if args.only in (None, "latency"):
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for _ in range(args.latency_runs):
                for rate, interval in ((20_000, 0.5), (20_000, 0.1), (100, 0.1)):
                    name = f"{rate}_lines_per_second_{round(interval * 1000)}ms_batches"
                    cell = runs.setdefault(name, {})
                    cell.setdefault("plain_python_1_process", []).append(
                        plain_latency(sample, rate, interval, args.latency_batches)
                    )
                    for op in ("update_state_by_key", "map_with_state"):
                        cell.setdefault(f"kubestream_{op}", []).append(
                            kubestream_latency(
                                cluster, sample, op, rate, interval, args.latency_batches
                            )
                        )
            latency = {
                name: {who: median_run(results) for who, results in cell.items()}
                for name, cell in runs.items()
            }
    finally:
        cluster.close()
    if args.only in (None, "throughput") and not args.skip_pyspark:
        throughput["pyspark_structured_streaming_local_2"] = in_child(
            pyspark_structured, names, work
        )
    for run in throughput.values():
        if run.get("seconds"):
            run["lines_per_second"] = args.lines / run["seconds"]
        if run.get("busy_seconds"):
            run["lines_per_busy_second"] = args.lines / run["busy_seconds"]
    floor = throughput.get("plain_python_2_processes", {}).get("lines_per_second")
    ceiling = args.lines / args.files / THROUGHPUT_BATCH_INTERVAL
    results["kubestream_ceiling"] = {
        "batch_interval_seconds": THROUGHPUT_BATCH_INTERVAL,
        "lines_per_second": ceiling,
        "vs_plain_python_2_processes": ceiling / floor if floor else None,
    }
    if floor:
        for run in throughput.values():
            if "lines_per_second" in run:
                run["vs_plain_python_2_processes"] = run["lines_per_second"] / floor
            if "lines_per_busy_second" in run:
                run["busy_vs_plain_python_2_processes"] = run["lines_per_busy_second"] / floor
    results["throughput"] = throughput
    results["latency"] = latency
    results["machine"]["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
