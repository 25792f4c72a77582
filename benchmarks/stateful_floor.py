"""The least CPU the stateful word count of benchmarks/stateful.py can take, whatever the
engine, and the best ratio to the two-process plain loop that leaves; written as JSON.

    .venv/bin/python benchmarks/stateful_floor.py [--out benchmarks/results/stateful_floor.json]

Issue 16 asks for 0.7x the two-process plain loop's lines per second. This script
measures, on one core and as plain Python with no scheduling, sockets or undo records,
each piece of work a Spark-semantics engine must do for the user's program
(`flat_map(str.split).map(lambda w: (w, 1)).reduce_by_key(add)
.update_state_by_key(running_sum)`, the whole state delivered to the driver every batch):

- map side: read the batch's file, split lines, call the user's pair function on every
  word and add its pair to a dict, in one plain loop (`get(key, 0) + value`, right for
  this program's counts only: an engine's combine must take any values, as kubestream's
  operators do, measured beside it and step by step in map_side_floor.py);
- shuffle: the combined pairs bucketed by key hash, pickled, unpickled and merged on the
  reduce side, since two processes share the work;
- update: the user's function offered every key of the state with its batch's values;
- replica: the changed entries pickled, unpickled and applied on a second process (the
  issue's design keeps every partition on two executors);
- delivery: the whole state pickled and unpickled into the driver.

Each step runs over all the workload's files in order, on a running state, `--repeats`
times, interleaved with the one-process plain loop (CPU seconds, here) and the
two-process loop (wall clock, in child processes); medians are kept. The steps' sum is
the floor. An engine doing only that work reaches at best, against the two-process loop:

- `as_the_loop_shares_cores`: the one-process loop's CPU over the floor's, if the
  engine's processes share the two cores as well as the loop's two do (on this VM two
  processes get 1.2x-1.6x the work of one done); the figure to set beside the goal;
- `with_two_whole_cores`: 2 x the two-process loop's wall clock over the floor, if the
  engine's work split over two whole cores without loss; looser, and noisier.

Each is given as measured, without the replica, and with kubestream's operators on the
map side instead of the plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubestream.core.ops import HashPartitioner
from map_side_floor import pair_with_one, split_pair_and_combine
from stateful import in_child, plain_python, running_sum
from zipf_workload import write_zipf_files

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.7
PARTITIONS = 2
Entries = list[tuple[str, int]]


def _crossing(value: Any) -> Any:
    """A value as a process boundary leaves it: pickled, then unpickled."""
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


class Batches:
    """The workload's batches, each step's inputs computed once and its time measured alone."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.lines = [Path(n).read_text(encoding="utf-8").splitlines() for n in names]
        half = [len(lines) // 2 for lines in self.lines]
        self.splits = [[ls[:h], ls[h:]] for ls, h in zip(self.lines, half, strict=True)]
        self.combined = [[pair_and_combine(s) for s in pair] for pair in self.splits]
        partitioner = HashPartitioner(PARTITIONS)
        self.buckets = [[partitioner.split(c.items()) for c in pair] for pair in self.combined]
        self.reduced = [self._reduce(b) for b in self.buckets]
        self.states, self.deltas = self._run_state()

    @staticmethod
    def _reduce(buckets: list[list[Entries]]) -> list[dict[str, int]]:
        reduced: list[dict[str, int]] = []
        for p in range(PARTITIONS):
            merged: dict[str, int] = {}
            for from_map in buckets:
                for k, v in from_map[p]:
                    merged[k] = merged.get(k, 0) + v
            reduced.append(merged)
        return reduced

    def _run_state(self) -> tuple[list[list[dict[str, int]]], list[list[dict[str, int]]]]:
        states: list[list[dict[str, int]]] = []
        deltas: list[list[dict[str, int]]] = []
        current: list[dict[str, int]] = [{} for _ in range(PARTITIONS)]
        for reduced in self.reduced:
            updated = [update_every_key(s, r) for s, r in zip(current, reduced, strict=True)]
            deltas.append(updated)
            current = [s | u for s, u in zip(current, updated, strict=True)]
            states.append(current)
        return states, deltas


def pair_and_combine(lines: list[str]) -> dict[str, int]:
    """The user's map side as one loop: pair every word, add the pairs up by key."""
    combined: dict[str, int] = {}
    get = combined.get
    for line in lines:
        for word in line.split():
            key, value = pair_with_one(word)
            combined[key] = get(key, 0) + value
    return combined


def update_every_key(state: dict[str, int], batch: dict[str, int]) -> dict[str, int]:
    """The changed entries after offering every key its batch's values (Spark's
    updateStateByKey): the least an engine can do, no undo record and no change times."""
    changed: dict[str, int] = {}
    for k, old in state.items():
        v = batch.get(k)
        new = running_sum([] if v is None else [v], old)
        if new != old:
            changed[k] = new
    for k, v in batch.items():
        if k not in state:
            changed[k] = running_sum([v], None)
    return changed


def step_map_side(b: Batches) -> None:
    for name in b.names:
        lines = Path(name).read_text(encoding="utf-8").splitlines()
        half = len(lines) // 2
        for part in (lines[:half], lines[half:]):
            pair_and_combine(part)


def step_map_side_kubestream_operators(b: Batches) -> None:
    for name in b.names:
        lines = Path(name).read_text(encoding="utf-8").splitlines()
        half = len(lines) // 2
        for part in (lines[:half], lines[half:]):
            split_pair_and_combine(part)


def step_shuffle(b: Batches) -> None:
    partitioner = HashPartitioner(PARTITIONS)
    for pair in b.combined:
        arrived = [_crossing(partitioner.split(c.items())) for c in pair]
        Batches._reduce(arrived)


def step_update(b: Batches) -> None:
    previous: list[dict[str, int]] = [{} for _ in range(PARTITIONS)]
    for reduced, states in zip(b.reduced, b.states, strict=True):
        for s, r in zip(previous, reduced, strict=True):
            update_every_key(s, r)
        previous = states


def step_replica(b: Batches) -> None:
    replica: list[dict[str, int]] = [{} for _ in range(PARTITIONS)]
    for deltas in b.deltas:
        for p, delta in enumerate(deltas):
            replica[p].update(_crossing(delta))


def step_delivery(b: Batches) -> None:
    for states in b.states:
        delivered: Entries = []
        for state in states:
            delivered += _crossing(list(state.items()))


STEPS: dict[str, Callable[[Batches], None]] = {
    "map_side": step_map_side,
    "shuffle": step_shuffle,
    "update": step_update,
    "replica": step_replica,
    "delivery": step_delivery,
}
ALTERNATIVES: dict[str, Callable[[Batches], None]] = {
    "map_side_kubestream_operators": step_map_side_kubestream_operators,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--note", default="", help="recorded in the JSON (e.g. machine load)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/stateful_floor.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubestream-floor-") as work:
        names = [str(p) for p in write_zipf_files(Path(work), args.lines, args.files)]
        batches = Batches(names)
        times: dict[str, list[float]] = {name: [] for name in STEPS | ALTERNATIVES}
        one_process: list[float] = []
        two_processes: list[float] = []
        for _ in range(args.repeats):
            two_processes.append(in_child(plain_python, names, 2)["seconds"])
            started = time.process_time()
            plain_python(names, 1)
            one_process.append(time.process_time() - started)
            for name, step in (STEPS | ALTERNATIVES).items():
                started = time.process_time()
                step(batches)
                times[name].append(time.process_time() - started)
    cpu = {name: statistics.median(values) for name, values in times.items()}
    loop_cpu = statistics.median(one_process)
    loop_wall = statistics.median(two_processes)
    floors = {
        "as_measured": sum(cpu[name] for name in STEPS),
        "without_replica": sum(cpu[name] for name in STEPS if name != "replica"),
        "with_kubestream_operators": sum(cpu[name] for name in STEPS if name != "map_side")
        + cpu["map_side_kubestream_operators"],
    }
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "note": args.note,
        },
        "workload": {"lines": args.lines, "files": args.files, "vocabulary": 50_000},
        "goal": GOAL,
        "plain_python_1_process_cpu_seconds": loop_cpu,
        "plain_python_2_processes_seconds": loop_wall,
        "floor_cpu_seconds": {name: cpu[name] for name in STEPS},
        "map_side_kubestream_operators_cpu_seconds": cpu["map_side_kubestream_operators"],
        "floor_cpu_seconds_total": floors,
        "best_ratio_to_the_two_process_loop": {
            "as_the_loop_shares_cores": {k: loop_cpu / f for k, f in floors.items()},
            "with_two_whole_cores": {k: 2 * loop_wall / f for k, f in floors.items()},
        },
        "runs": {
            "plain_python_1_process_cpu_seconds": one_process,
            "plain_python_2_processes_seconds": two_processes,
            "cpu_seconds": times,
        },
    }
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
