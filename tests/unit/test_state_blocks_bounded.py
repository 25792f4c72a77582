"""Executors' blocks stay bounded under stateful and windowed streams, however many batches run.

Every batch of such a stream persists an RDD (blocks, or a version in the
executors' state store) whose lineage holds shuffles; when the batch is dropped,
its persisted blocks or state version and every shuffle beneath it must go,
whatever persisted RDD lies between (issue 17, item 1). Counted on the
executors' own block managers and state stores, summed, after each batch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest

from kubestream import StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.engine import Engine
from kubestream.executor.in_process import InProcessExecutors
from kubestream.streaming.dstream import DStream

WARM_UP = 6
BATCHES = 30


def running_total(key: str, value: int, state: Any) -> tuple[str, int]:
    total = state.get_option(0) + value
    state.update(total)
    return key, total


PIPELINES: dict[str, Callable[[DStream], DStream]] = {
    "update_state_by_key": lambda s: s.reduce_by_key(operator.add).update_state_by_key(
        lambda new, old: sum(new) + (old or 0)
    ),
    "map_with_state": lambda s: s.reduce_by_key(operator.add).map_with_state(
        StateSpec.of(running_total)
    ),
    "map_with_state snapshots": lambda s: s.map_with_state(
        StateSpec.of(running_total)
    ).state_snapshots(),
    "reduce_by_key_and_window with inverse": lambda s: s.reduce_by_key_and_window(
        operator.add, operator.sub, 3, 1
    ),
    "window of a shuffle": lambda s: s.reduce_by_key(operator.add).window(3, 1),
}


@pytest.mark.parametrize("name", PIPELINES)
def test_blocks_per_executor_stay_bounded(name: str) -> None:
    engine = Engine(default_parallelism=2)
    executors = InProcessExecutors(engine, 2)
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, engine=engine)
    batches = [[(f"k{(i * 7 + b) % 50}", 1) for i in range(200)] for b in range(BATCHES)]
    stream = ssc.queue_stream(batches)
    PIPELINES[name](stream).foreach_rdd(lambda rdd: rdd.collect())
    counts: list[int] = []
    sizes: list[int] = []
    ssc.start()
    try:
        for _ in range(BATCHES):
            clock.advance(1.0)
            info = ssc.wait_for_batch(round(clock.now() * 1000), 30)
            assert not info.failed, info.errors
            # Summed over executors: where tasks ran (locality waits run out on a loaded
            # machine) moves blocks between executors without changing how many there are.
            stats = [core.block_stats() for core in executors.cores.values()]
            counts.append(sum(n for n, _ in stats))
            sizes.append(sum(b for _, b in stats))
    finally:
        ssc.stop()
    # After the warm-up (state and windows reach their length), a leak grows every batch,
    # so the second half's peak would exceed the first's; a bounded job's does not.
    half = (WARM_UP + BATCHES) // 2
    assert max(counts[half:]) <= max(counts[WARM_UP:half]), counts
    assert max(sizes[half:]) <= 1.2 * max(sizes[WARM_UP:half]), sizes
