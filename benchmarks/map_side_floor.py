"""What one file of the stateful workload costs on one core at each step of Spark's word
count, `flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(add)`, through kubestream's
own operators, beside the plain loop of benchmarks/stateful.py; written as JSON.

    .venv/bin/python benchmarks/map_side_floor.py [--out benchmarks/results/map_side_floor.json]

The lines of one 50,000-line file of issue 16's workload (10 words a line, 50,000-word Zipf
vocabulary) are read into memory once; each step then runs over them `--repeats` times,
the steps interleaved, and the median is kept. The per-word function call and the combine
loop, the differences between consecutive steps, are the map side's floor in Python: no
scheduling, shuffle or state. Multiplied by the workload's 40 files they are CPU seconds
to set beside the plain loops' totals in benchmarks/results/stateful.json.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubestream.core.ops import Aggregator, FlatMapOp, MapOp, count_values, identity
from zipf_workload import write_zipf_files

ROOT = Path(__file__).resolve().parents[1]
LINES_PER_FILE = 50_000
WORKLOAD_FILES = 40


def pair_with_one(word: str) -> tuple[str, int]:
    """The user's `lambda w: (w, 1)`."""
    return word, 1


def words(lines: list[str]) -> Iterator[str]:
    return FlatMapOp(str.split)(0, iter(lines))


def drain(records: Iterator[Any]) -> None:
    """Consume an iterator in C, so the step's time is its own."""
    deque(records, maxlen=0)


def split_only(lines: list[str]) -> None:
    drain(words(lines))


def split_and_pair(lines: list[str]) -> None:
    drain(MapOp(pair_with_one)(0, words(lines)))


def split_pair_and_combine(lines: list[str]) -> None:
    """kubestream's map side of reduce_by_key(add), as a shuffle-writing task runs it."""
    pairs = MapOp(pair_with_one)(0, words(lines))
    Aggregator(identity, operator.add, operator.add).combine_values(pairs)


def split_and_count_by_value(lines: list[str]) -> None:
    """kubestream's map side of count_by_value (a Counter a partition)."""
    drain(count_values(words(lines)))


def plain_counter_update(lines: list[str]) -> None:
    """The plain loop's counting (zipf_workload.batch_counts, without the file read)."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(line.split())


STEPS: dict[str, Callable[[list[str]], None]] = {
    "split": split_only,
    "split_and_pair_with_one": split_and_pair,
    "split_pair_and_combine": split_pair_and_combine,
    "split_and_count_by_value": split_and_count_by_value,
    "plain_counter_update": plain_counter_update,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. machine load)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/map_side_floor.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubestream-floor-") as work:
        (path,) = write_zipf_files(Path(work), LINES_PER_FILE, 1)
        lines = path.read_text(encoding="utf-8").splitlines()
    times: dict[str, list[float]] = {name: [] for name in STEPS}
    for _ in range(args.repeats):
        for name, step in STEPS.items():
            started = time.perf_counter()
            step(lines)
            times[name].append((time.perf_counter() - started) * 1000)
    ms = {name: statistics.median(values) for name, values in times.items()}
    per_word_call = ms["split_and_pair_with_one"] - ms["split"]
    combine = ms["split_pair_and_combine"] - ms["split_and_pair_with_one"]
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "note": args.note,
        },
        "file": {"lines": LINES_PER_FILE, "words": 10 * LINES_PER_FILE, "vocabulary": 50_000},
        "median_ms_per_file": ms,
        "runs_ms": times,
        "per_word_call_ms": per_word_call,
        "combine_loop_ms": combine,
        "workload_cpu_seconds": {
            "per_word_call_and_combine": (per_word_call + combine) * WORKLOAD_FILES / 1000,
            "kubestream_map_side": ms["split_pair_and_combine"] * WORKLOAD_FILES / 1000,
            "plain_counter_update": ms["plain_counter_update"] * WORKLOAD_FILES / 1000,
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs_ms"}, indent=2))


if __name__ == "__main__":
    main()
