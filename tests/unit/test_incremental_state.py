"""State updated in place: cost follows the batch, results and fault tolerance stay exact.

On in-process executors (same ExecutorCore as executor processes): map_with_state
calls its function only for keys with records or an expired timeout; what goes to
the replica is what changed, not the whole state; losing an executor at any batch
(and gaining a new one) leaves running totals equal to plain-Python references.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream import State, StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.engine import Engine
from kubestream.core.rdd import RDD
from kubestream.executor.in_process import InProcessExecutors
from kubestream.streaming.dstream import DStream
from tests.stateful_cases import add_running, running_mapped, running_sums

CALLS: Counter[str] = Counter()


def counted_running(key: str, value: int | None, state: State) -> tuple[str, int]:
    CALLS[key] += 1
    return add_running(key, value or 0, state)


def running_sum(values: list[int], old: int | None) -> int:
    return sum(values) + (old or 0)


def run(
    batches: list[list[Any]],
    pipeline: Callable[[DStream], DStream],
    executors: int = 2,
    between: Callable[[int, InProcessExecutors], None] | None = None,
) -> tuple[list[list[Any]], InProcessExecutors]:
    engine = Engine(default_parallelism=4)
    cluster = InProcessExecutors(engine, executors)
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, engine=engine)
    outputs: dict[int, list[Any]] = {}

    def collect(batch_time: int, rdd: RDD) -> None:
        outputs[batch_time] = rdd.collect()

    pipeline(ssc.queue_stream(batches)).foreach_rdd(collect)
    ssc.start()
    times = []
    try:
        for index in range(len(batches)):
            if between is not None:
                between(index, cluster)
            clock.advance(1.0)
            batch_time = round(clock.now() * 1000)
            info = ssc.wait_for_batch(batch_time, 60)
            assert not info.failed, info.errors
            times.append(batch_time)
    finally:
        ssc.stop()
    return [outputs.get(t, []) for t in times], cluster


def test_map_with_state_calls_its_function_only_for_keys_with_records() -> None:
    CALLS.clear()
    big = [(f"k{i}", 1) for i in range(500)]
    batches = [big, [("k1", 1)], [("k2", 1), ("k2", 1)], []]
    produced, _ = run(batches, lambda s: s.map_with_state(StateSpec.of(counted_running)))
    assert [sorted(b) for b in produced] == [sorted(b) for b in running_mapped(batches)]
    assert sum(CALLS.values()) == 500 + 1 + 2


def test_replicas_receive_what_changed_not_the_whole_state() -> None:
    """A batch touching 3 of 2,000 keys sends the replicas a few hundred bytes, not the state."""
    puts: list[int] = []
    batches = [[(f"key-{i}", i) for i in range(2000)]] + [[("key-1", 1), ("key-2", 2)]] * 4

    def record_puts(index: int, cluster: InProcessExecutors) -> None:
        if index == 1:
            original = cluster._put

            def counting(location: Any, block_id: str, blob: bytes) -> bool:
                puts.append(len(blob))
                return original(location, block_id, blob)

            for core in cluster.cores.values():
                core._putter = counting

    produced, _ = run(batches, lambda s: s.update_state_by_key(running_sum), between=record_puts)
    assert [sorted(b) for b in produced] == [sorted(b) for b in running_sums(batches)]
    full_state = 2000 * len(b"key-1999") + 2000 * 2  # a lower bound on a full copy's size
    assert puts and max(puts) < full_state / 20, puts


def test_every_key_is_offered_to_update_state_by_key_every_batch() -> None:
    batches = [[("a", 1), ("b", 1)], [], [("c", 1)]]
    produced, _ = run(
        batches, lambda s: s.update_state_by_key(lambda vs, old: (old or 0) + len(vs) + 1)
    )
    # Every held key gains 1 a batch, with or without records: only an offer does that.
    assert [sorted(b) for b in produced] == [
        [("a", 2), ("b", 2)],
        [("a", 3), ("b", 3)],
        [("a", 4), ("b", 4), ("c", 2)],
    ]


counts = st.lists(st.tuples(st.sampled_from("abcdefghij"), st.integers(1, 5)), max_size=15)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(counts, min_size=2, max_size=6), data=st.data())
def test_losing_an_executor_at_any_batch_keeps_state_exact(
    batches: list[list[Any]], data: st.DataObject
) -> None:
    kill_at = data.draw(st.integers(1, len(batches) - 1))
    victim = data.draw(st.sampled_from(["exec-1", "exec-2", "exec-3"]))
    snapshots = data.draw(st.booleans())

    def kill(index: int, cluster: InProcessExecutors) -> None:
        if index == kill_at:
            cluster.kill(victim)
            cluster.add("exec-new")

    if snapshots:
        pipeline: Callable[[DStream], DStream] = lambda s: s.map_with_state(  # noqa: E731
            StateSpec.of(add_running)
        ).state_snapshots()
    else:
        pipeline = lambda s: s.update_state_by_key(running_sum)  # noqa: E731
    produced, _ = run(batches, pipeline, executors=3, between=kill)
    assert [sorted(b) for b in produced] == [sorted(b) for b in running_sums(batches)]
