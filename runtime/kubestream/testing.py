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
    *,
    partitions: int | None = None,
    num_batches: int | None = None,
    skip_missing: bool = False,
) -> list[list[Any]]:
    """inputs[i][b] is the b-th batch of the i-th input stream; returns each batch's output.

    Parameters
    ----------
    partitions : int, optional
        Partitions of each input batch; default: the engine's default parallelism.
    num_batches : int, optional
        Batches to run; default: the longest input's (shorter inputs are empty after).
    skip_missing : bool
        Leave out batches in which the pipeline's stream has no RDD (a windowed
        stream between slides) instead of returning [] for them.

    Raises
    ------
    AssertionError
        A batch failed; the message holds its errors.
    """
    clock = ManualClock(1000.0)
    ssc = StreamingContext(batch_interval, clock=clock, engine=engine)
    streams = [
        ssc.queue_stream(
            [ssc.engine.parallelize(list(b), partitions) for b in batches]
            if partitions
            else [list(b) for b in batches]
        )
        for batches in inputs
    ]
    outputs: dict[int, list[Any]] = {}

    def collect(batch_time: int, rdd: RDD) -> None:
        outputs[batch_time] = rdd.collect()

    pipeline(*streams).foreach_rdd(collect)
    ssc.start()
    times = []
    try:
        for _ in range(num_batches or max(len(batches) for batches in inputs)):
            clock.advance(batch_interval)
            batch_time = round(clock.now() * 1000)
            info = ssc.wait_for_batch(batch_time, timeout)
            if info.failed:
                raise AssertionError(f"batch {batch_time} failed: {info.errors}")
            times.append(batch_time)
    finally:
        ssc.stop(stop_engine=engine is None)
    if skip_missing:
        return [outputs[t] for t in times if t in outputs]
    return [outputs.get(t, []) for t in times]
