"""Helpers for testing streaming applications without waiting on the wall clock.

`run_batches` feeds lists of records through a pipeline on a ManualClock, one
batch per list, and returns what each batch produced. It runs on in-process
executors by default, or on any Engine (for example one driving executor processes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kubestream.clock import ManualClock
from kubestream.core.engine import Engine
from kubestream.core.rdd import RDD
from kubestream.streaming.context import StreamingContext
from kubestream.streaming.dstream import DStream


def run_batches(
    inputs: Sequence[Sequence[Sequence[Any]]],
    pipeline: Callable[..., DStream],
    engine: Engine | None = None,
    batch_interval: float = 1.0,
    timeout: float = 60.0,
) -> list[list[Any]]:
    """inputs[i][b] is the b-th batch of the i-th input stream; returns each batch's output."""
    clock = ManualClock(1000.0)
    ssc = StreamingContext(batch_interval, clock=clock, engine=engine)
    streams = [ssc.queue_stream([list(b) for b in batches]) for batches in inputs]
    outputs: dict[int, list[Any]] = {}

    def collect(batch_time: int, rdd: RDD) -> None:
        outputs[batch_time] = rdd.collect()

    pipeline(*streams).foreach_rdd(collect)
    ssc.start()
    times = []
    try:
        for _ in range(max(len(batches) for batches in inputs)):
            clock.advance(batch_interval)
            batch_time = round(clock.now() * 1000)
            info = ssc.wait_for_batch(batch_time, timeout)
            if info.failed:
                raise AssertionError(f"batch {batch_time} failed: {info.errors}")
            times.append(batch_time)
    finally:
        ssc.stop(stop_engine=engine is None)
    return [outputs.get(t, []) for t in times]
