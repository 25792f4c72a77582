"""DStream: a stream as a sequence of per-batch RDDs, with Spark's operators under PEP 8 names.

Operators keep their partition functions from construction, so a user function
is pickled once for the life of the job rather than once per batch.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from kubestream.core.ops import (
    GROUP_BY_KEY,
    Aggregator,
    FilterOp,
    FlatMapOp,
    FlatMapValuesOp,
    GlomOp,
    MapOp,
    MapPartitionsOp,
    MapPartitionsWithIndexOp,
    MapValuesOp,
    PartitionFn,
    identity,
    with_one,
)
from kubestream.core.rdd import RDD, MapPartitionsRDD, ShuffledRDD, UnionRDD
from kubestream.streaming.output import print_batch, save_text_batch

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


class DStream:
    """A discretized stream: compute(t) gives the RDD of batch time t (milliseconds)."""

    def __init__(self, env: StreamingEnv, parents: Iterable[DStream] = ()) -> None:
        self.env = env
        self.parents = list(parents)
        self.id = env.graph.register(self)
        self.generated: dict[int, RDD] = {}
        self.remember_ms = 0

    @property
    def slide_ms(self) -> int:
        return self.parents[0].slide_ms if self.parents else self.env.batch_interval_ms

    def compute(self, batch_time: int) -> RDD | None:
        raise NotImplementedError

    def describe(self) -> str:
        """The stream's shape for the graph fingerprint: its kind, not its code."""
        return type(self).__name__

    def is_time_valid(self, batch_time: int) -> bool:
        return (batch_time - self.env.graph.zero_time) % self.slide_ms == 0

    def get_or_compute(self, batch_time: int) -> RDD | None:
        if batch_time in self.generated:
            return self.generated[batch_time]
        if not self.is_time_valid(batch_time):
            return None
        rdd = self.compute(batch_time)
        if rdd is not None:
            self.generated[batch_time] = rdd
        return rdd

    def clear_metadata(self, batch_time: int) -> list[RDD]:
        """Forget RDDs no longer needed after batch_time; returns them so their shuffles go too."""
        keep_from = batch_time - max(self.remember_ms, self.slide_ms) + 1
        old = [t for t in self.generated if t < keep_from]
        return [self.generated.pop(t) for t in old]

    def remember(self, duration_ms: int) -> None:
        """Keep RDDs for at least this long, for windows reaching back over this stream."""
        self.remember_ms = max(self.remember_ms, duration_ms)
        for parent in self.parents:
            parent.remember(duration_ms)

    # --- narrow transformations -----------------------------------------------------------
    def _op(self, op: PartitionFn) -> DStream:
        return OpDStream(self, op)

    def map(self, fn: Callable[[Any], Any]) -> DStream:
        return self._op(MapOp(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._op(FlatMapOp(fn))

    def filter(self, fn: Callable[[Any], bool]) -> DStream:
        return self._op(FilterOp(fn))

    def map_partitions(self, fn: Callable[[Iterator[Any]], Iterable[Any]]) -> DStream:
        return self._op(MapPartitionsOp(fn))

    def map_partitions_with_index(
        self, fn: Callable[[int, Iterator[Any]], Iterable[Any]]
    ) -> DStream:
        return self._op(MapPartitionsWithIndexOp(fn))

    def map_values(self, fn: Callable[[Any], Any]) -> DStream:
        return self._op(MapValuesOp(fn))

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]]) -> DStream:
        return self._op(FlatMapValuesOp(fn))

    def glom(self) -> DStream:
        return self._op(GlomOp())

    def union(self, *others: DStream) -> DStream:
        return UnionDStream(self.env, [self, *others])

    def repartition(self, num_partitions: int) -> DStream:
        return TransformedDStream([self], lambda t, rdds: rdds[0].repartition(num_partitions))

    # --- aggregations ---------------------------------------------------------------------
    def combine_by_key(
        self,
        create_combiner: Callable[[Any], Any],
        merge_value: Callable[[Any, Any], Any],
        merge_combiners: Callable[[Any, Any], Any],
        num_partitions: int | None = None,
    ) -> DStream:
        aggregator = Aggregator(create_combiner, merge_value, merge_combiners)
        return ShuffledDStream(self, aggregator, num_partitions)

    def reduce_by_key(
        self, fn: Callable[[Any, Any], Any], num_partitions: int | None = None
    ) -> DStream:
        return self.combine_by_key(identity, fn, fn, num_partitions)

    def group_by_key(self, num_partitions: int | None = None) -> DStream:
        return ShuffledDStream(self, GROUP_BY_KEY, num_partitions)

    def count_by_value(self, num_partitions: int | None = None) -> DStream:
        return self.map(with_one).reduce_by_key(operator.add, num_partitions)

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DStream:
        """One record per non-empty batch: fn folded over the batch."""
        return self.map(_keyed_by_none).reduce_by_key(fn, 1).map(_second)

    def count(self) -> DStream:
        """One record per batch, the batch's record count (0 for an empty batch)."""
        counts = self.map_partitions(_partition_count)
        return TransformedDStream([counts], _with_zero).reduce(operator.add)

    # --- joins ----------------------------------------------------------------------------
    def cogroup(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return TransformedDStream(
            [self, other], lambda t, rdds: rdds[0].cogroup(rdds[1], num_partitions=num_partitions)
        )

    def join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return TransformedDStream([self, other], lambda t, r: r[0].join(r[1], num_partitions))

    def left_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return TransformedDStream(
            [self, other], lambda t, r: r[0].left_outer_join(r[1], num_partitions)
        )

    def right_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return TransformedDStream(
            [self, other], lambda t, r: r[0].right_outer_join(r[1], num_partitions)
        )

    def full_outer_join(self, other: DStream, num_partitions: int | None = None) -> DStream:
        return TransformedDStream(
            [self, other], lambda t, r: r[0].full_outer_join(r[1], num_partitions)
        )

    # --- windows ----------------------------------------------------------------------------
    def window(self, window: float, slide: float | None = None) -> DStream:
        """Every slide (seconds, default: the batch interval), the records of the last `window`."""
        from kubestream.streaming.windows import WindowedDStream, to_ms

        slide_ms = to_ms(slide, "slide") if slide is not None else self.slide_ms
        return WindowedDStream(self, to_ms(window, "window"), slide_ms)

    def reduce_by_key_and_window(
        self,
        reduce_fn: Callable[[Any, Any], Any],
        inverse_fn: Callable[[Any, Any], Any] | None = None,
        window: float = 0,
        slide: float | None = None,
        num_partitions: int | None = None,
        filter_fn: Callable[[tuple[Any, Any]], bool] | None = None,
    ) -> DStream:
        """With inverse_fn the window updates incrementally; filter_fn drops keys (e.g. zeros)."""
        from kubestream.streaming.windows import ReducedWindowedDStream, to_ms

        window_ms = to_ms(window, "window")
        slide_ms = to_ms(slide, "slide") if slide is not None else self.slide_ms
        if inverse_fn is None:
            reduced = self.reduce_by_key(reduce_fn, num_partitions)
            windowed = reduced.window(window, slide).reduce_by_key(reduce_fn, num_partitions)
            return windowed.filter(filter_fn) if filter_fn is not None else windowed
        return ReducedWindowedDStream(
            self, reduce_fn, inverse_fn, window_ms, slide_ms, num_partitions, filter_fn
        )

    def reduce_by_window(
        self,
        reduce_fn: Callable[[Any, Any], Any],
        inverse_fn: Callable[[Any, Any], Any] | None,
        window: float,
        slide: float | None = None,
    ) -> DStream:
        keyed = self.map(_keyed_by_none)
        return keyed.reduce_by_key_and_window(reduce_fn, inverse_fn, window, slide, 1).map(_second)

    def count_by_window(self, window: float, slide: float | None = None) -> DStream:
        return self.map(_one).reduce_by_window(operator.add, operator.sub, window, slide)

    def count_by_value_and_window(
        self, window: float, slide: float | None = None, num_partitions: int | None = None
    ) -> DStream:
        return self.map(with_one).reduce_by_key_and_window(
            operator.add, operator.sub, window, slide, num_partitions, _non_zero_value
        )

    # --- state ----------------------------------------------------------------------------
    def update_state_by_key(
        self,
        update_fn: Callable[[list[Any], Any], Any],
        num_partitions: int | None = None,
        initial: Iterable[tuple[Any, Any]] | None = None,
    ) -> DStream:
        """update_fn(new_values, old_state_or_None) -> new state; None removes the key."""
        from kubestream.streaming.state import StateDStream

        return StateDStream(self, update_fn, num_partitions, initial)

    def map_with_state(self, spec: Any) -> Any:
        """spec: kubestream.StateSpec; returns a stream of mapped records with state_snapshots()."""
        from kubestream.streaming.state import MapWithStateDStream

        return MapWithStateDStream(self, spec)

    # --- arbitrary RDD functions ----------------------------------------------------------
    def transform(self, fn: Callable[..., RDD]) -> DStream:
        """fn(rdd) or fn(batch_time_ms, rdd) -> RDD, run on the driver for every batch."""
        with_time = _arity(fn) >= 2
        return TransformedDStream(
            [self], lambda t, rdds: fn(t, rdds[0]) if with_time else fn(rdds[0])
        )

    def transform_with(self, other: DStream, fn: Callable[..., RDD]) -> DStream:
        """fn(rdd, other_rdd) or fn(batch_time_ms, rdd, other_rdd) -> RDD."""
        with_time = _arity(fn) >= 3
        return TransformedDStream(
            [self, other],
            lambda t, r: fn(t, r[0], r[1]) if with_time else fn(r[0], r[1]),
        )

    # --- outputs --------------------------------------------------------------------------
    def foreach_rdd(self, fn: Callable[..., None]) -> None:
        """fn(rdd) or fn(batch_time_ms, rdd), run on the driver for every batch."""
        with_time = _arity(fn) >= 2
        self.env.graph.add_output(self, lambda t, rdd: fn(t, rdd) if with_time else fn(rdd))

    def pprint(self, num: int = 10) -> None:
        self.env.graph.add_output(self, lambda t, rdd: print_batch(t, rdd, num))

    def save_as_text_files(self, prefix: str, suffix: str | None = None) -> None:
        """One directory PREFIX-<batch ms>[.SUFFIX] per batch of part-NNNNN files, atomically."""
        self.env.graph.add_output(self, lambda t, rdd: save_text_batch(t, rdd, prefix, suffix))


class StatefulDStream(DStream):
    """A stream whose RDD at t builds on its RDD at t - slide: data-checkpointed every N batches."""

    def checkpoint_records(self, batch_time: int) -> list[Any] | None:
        rdd = self.generated.get(batch_time)
        return None if rdd is None else rdd.collect()

    def restore_records(self, batch_time: int, records: list[Any]) -> None:
        self.generated[batch_time] = self.env.engine.parallelize(records)


class OpDStream(DStream):
    def __init__(self, parent: DStream, op: PartitionFn) -> None:
        super().__init__(parent.env, [parent])
        self.op = op

    def describe(self) -> str:
        return f"{type(self.op).__name__}"

    def compute(self, batch_time: int) -> RDD | None:
        rdd = self.parents[0].get_or_compute(batch_time)
        return None if rdd is None else MapPartitionsRDD(rdd, self.op)


class ShuffledDStream(DStream):
    def __init__(self, parent: DStream, aggregator: Aggregator, num_partitions: int | None) -> None:
        super().__init__(parent.env, [parent])
        self.aggregator = aggregator
        self.num_partitions = num_partitions

    def compute(self, batch_time: int) -> RDD | None:
        rdd = self.parents[0].get_or_compute(batch_time)
        if rdd is None:
            return None
        engine = rdd.engine
        n = self.num_partitions or engine.default_parallelism
        return ShuffledRDD(rdd, n, self.env.hash_partitioner(n), self.aggregator)


class UnionDStream(DStream):
    def __init__(self, env: StreamingEnv, parents: list[DStream]) -> None:
        slides = {p.slide_ms for p in parents}
        if len(slides) > 1:
            raise ValueError(f"union of streams with different slide durations: {sorted(slides)}")
        super().__init__(env, parents)

    def compute(self, batch_time: int) -> RDD | None:
        rdds = [p.get_or_compute(batch_time) for p in self.parents]
        present = [r for r in rdds if r is not None]
        return UnionRDD(self.env.engine, present) if present else None


class TransformedDStream(DStream):
    def __init__(self, parents: list[DStream], fn: Callable[[int, list[RDD]], RDD]) -> None:
        super().__init__(parents[0].env, parents)
        self.fn = fn

    def compute(self, batch_time: int) -> RDD | None:
        rdds = [p.get_or_compute(batch_time) for p in self.parents]
        resolved = [r if r is not None else self.env.engine.empty_rdd() for r in rdds]
        result = self.fn(batch_time, resolved)
        if not isinstance(result, RDD):
            raise TypeError(f"a transform function must return an RDD, got {type(result).__name__}")
        return result


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional)


def _one(value: Any) -> int:
    return 1


def _non_zero_value(pair: tuple[Any, Any]) -> bool:
    return bool(pair[1] != 0)


def _keyed_by_none(value: Any) -> tuple[None, Any]:
    return None, value


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _partition_count(records: Iterator[Any]) -> list[int]:
    return [sum(1 for _ in records)]


def _with_zero(batch_time: int, rdds: list[RDD]) -> RDD:
    return rdds[0].union(rdds[0].engine.parallelize([0], 1))
