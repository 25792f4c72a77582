"""The fused state read (tasks.ReadBack) and block ranges in the cases around them: a window
over map_with_state, mapped and snapshots both read, an executor lost in the middle of a
fused read, a read failing on one partition beside another output, checkpoints reading a
state no output read, and block counts of any size (wrong ones too)."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream import StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.dag_scheduler import DAGScheduler
from kubestream.core.engine import Engine
from kubestream.core.rdd import block_ranges
from kubestream.core.tasks import BlockSource
from kubestream.executor.in_process import InProcessExecutors
from kubestream.storage.block_manager import serialise
from kubestream.testing import run_batches
from tests.stateful_cases import add_running, running_mapped, running_sums
from tests.unit.test_block_ranges import BlocksOnlyEnv, read
from tests.unit.test_recovery import Job

LOCK = threading.Lock()
KILLED: list[str] = []
CLUSTER: list[Any] = []

BATCHES = [
    [("a", 1), ("b", 2), ("c", 3), ("d", 4)],
    [("a", 1), ("e", 2), ("c", 3)],
    [("b", 1), ("f", 2), ("a", 3), ("g", 1)],
    [("a", 1), ("b", 1), ("c", 1), ("d", 1), ("e", 1)],
]


def step_batches(
    ssc: StreamingContext, clock: ManualClock, count: int, failures_allowed: bool = False
) -> list[int]:
    """Start ssc, run `count` batches one at a time, stop it; their batch times (ms)."""
    ssc.start()
    times = []
    try:
        for _ in range(count):
            clock.advance(1.0)
            times.append(round(clock.now() * 1000))
            info = ssc.wait_for_batch(times[-1], 60)
            assert failures_allowed or not info.failed, info.errors
    finally:
        ssc.stop()
    return times


def reference_mapped(batches: list[list[tuple[str, int]]]) -> list[list[Any]]:
    return [sorted(b) for b in running_mapped(batches)]


def reference_totals(batches: list[list[tuple[str, int]]]) -> list[list[Any]]:
    return [sorted(b) for b in running_sums(batches)]


def test_window_over_map_with_state() -> None:
    produced = run_batches(
        [BATCHES], lambda s: s.map_with_state(StateSpec.of(add_running)).window(2.0, 1.0)
    )
    ref = reference_mapped(BATCHES)
    expected = [sorted(ref[i] + (ref[i - 1] if i else [])) for i in range(len(ref))]
    assert [sorted(b) for b in produced] == expected


def test_mapped_and_snapshots_both_outputs() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    mapped_out: dict[int, Any] = {}
    snaps_out: dict[int, Any] = {}
    mapped = ssc.queue_stream(BATCHES).map_with_state(StateSpec.of(add_running))
    mapped.foreach_rdd(lambda t, rdd: mapped_out.__setitem__(t, sorted(rdd.collect())))
    mapped.state_snapshots().foreach_rdd(
        lambda t, rdd: snaps_out.__setitem__(t, sorted(rdd.collect()))
    )
    mapped.foreach_rdd(lambda t, rdd: rdd.take(2))
    times = step_batches(ssc, clock, len(BATCHES))
    assert [mapped_out[t] for t in times] == reference_mapped(BATCHES)
    assert [snaps_out[t] for t in times] == reference_totals(BATCHES)


@pytest.mark.parametrize("fused", [True, False])
def test_losing_the_executor_in_the_middle_of_a_fused_read(fused: bool, monkeypatch: Any) -> None:
    if not fused:
        monkeypatch.setattr(DAGScheduler, "_read_while_updating", lambda *a: {})
    engine = Engine(default_parallelism=4)
    cluster = InProcessExecutors(engine, 3)
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, engine=engine)
    outputs: dict[int, Any] = {}
    killed = KILLED
    KILLED.clear()
    CLUSTER[:] = [cluster]

    def kill_mid_read(split: int, records: Any) -> Any:
        out = list(records)
        here = importlib.import_module("tests.unit.test_state_read_back_probes")
        with here.LOCK:
            if not here.KILLED and any(k == "a" and v == 2 for k, v in out):
                for eid, core in list(here.CLUSTER[0].cores.items()):
                    if threading.current_thread() in core._workers:
                        here.KILLED.append(eid)
                        t = threading.Thread(target=here.CLUSTER[0].kill, args=(eid,))
                        t.start()
                        t.join(5)
        return out

    stream = ssc.queue_stream(BATCHES).map_with_state(StateSpec.of(add_running))
    stream.map_partitions_with_index(kill_mid_read).foreach_rdd(
        lambda t, rdd: outputs.__setitem__(t, sorted(rdd.collect()))
    )
    try:
        times = step_batches(ssc, clock, len(BATCHES))
    finally:
        cluster.stop()
    assert killed
    assert [outputs[t] for t in times] == reference_mapped(BATCHES)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.lists(st.integers(), max_size=12), st.integers(0, 15)), max_size=6),
    st.integers(1, 6),
)
def test_any_counts_give_every_record_once_in_order(
    blocks: list[tuple[list[int], int]], parallelism: int
) -> None:
    env = BlocksOnlyEnv()
    for i, (records, _) in enumerate(blocks):
        env.blocks.put(f"input-{i}", serialise(records))
    sized = [(BlockSource(f"input-{i}", ()), count) for i, (_, count) in enumerate(blocks)]
    runs = [read(source, env) for source in block_ranges(sized, parallelism)]
    assert [r for run in runs for r in run] == [r for b, _ in blocks for r in b]


def fail_on_partition_one(split: int, records: Any) -> Any:
    out = list(records)
    if split == 1 and out:
        raise ValueError("boom on partition 1")
    return out


def test_first_output_fails_on_one_partition_second_reads_same_state() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, on_batch_failure="continue")
    first: dict[int, Any] = {}
    second: dict[int, Any] = {}
    mapped = ssc.queue_stream(BATCHES).map_with_state(StateSpec.of(add_running))
    mapped.map_partitions_with_index(fail_on_partition_one).foreach_rdd(
        lambda t, rdd: first.__setitem__(t, sorted(rdd.collect()))
    )
    mapped.state_snapshots().foreach_rdd(
        lambda t, rdd: second.__setitem__(t, sorted(rdd.collect()))
    )
    times = step_batches(ssc, clock, len(BATCHES), failures_allowed=True)
    assert [second.get(t) for t in times] == reference_totals(BATCHES)


def windowed_totals(words: Any) -> Any:
    return words.update_state_by_key(lambda vs, old: sum(vs) + (old or 0)).window(2.0, 2.0)


def test_state_read_only_by_checkpoints_on_some_batches_resumes_exactly(
    tmp_path: Path, monkeypatch: Any
) -> None:
    got = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(DAGScheduler, "_read_while_updating", lambda *a: {})
        (tmp_path / str(fused)).mkdir()
        job = Job(tmp_path / str(fused), windowed_totals)
        clock = ManualClock(1000.0)
        job.run(clock, 7)
        job.run(ManualClock(clock.now()), 7)
        got.append(job.outputs)
    assert got[0] == got[1]
