"""DStream: a stream as a sequence of per-batch RDDs, with Spark's operators under PEP 8 names.

Operators keep their partition functions from construction, so a user function
is pickled once for the life of the job rather than once per batch.

Times: a batch time is an int of milliseconds since the epoch; durations users
pass (window, slide) are seconds. User functions run on executors unless said
otherwise (transform and foreach_rdd functions run on the driver), so they must
be picklable by cloudpickle. Mistakes in arguments raise ConfigError when the
stream is built, naming the argument and the value passed.
"""

from __future__ import annotations

import datetime
import inspect
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, cast

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
    count_values,
    identity,
)
from kubestream.core.rdd import RDD, MapPartitionsRDD, PersistedRDD, ShuffledRDD, UnionRDD
from kubestream.core.typevars import C, K, S, T, U, V, W
from kubestream.errors import ConfigError, require, require_count
from kubestream.streaming.output import print_batch, save_text_batch
from kubestream.streaming.sinks.cassandra.config import CassandraConnection, WriteOptions

if TYPE_CHECKING:
    from kubestream.streaming.context import StreamingContext
    from kubestream.streaming.env import StreamingEnv
    from kubestream.streaming.state import MapWithStateDStream, StateSpec


class DStream(Generic[T]):
    """A discretized stream of records of type T: one RDD[T] per batch.

    Built from a StreamingContext's sources and other streams' operators; nothing
    runs until an output operation (foreach_rdd, pprint, save_as_text_files) is
    registered and the context started. compute(t) gives the RDD of batch time t.
    """

    def __init__(self, env: StreamingEnv, parents: Iterable[DStream[Any]] = ()) -> None:
        self.env = env
        self.parents = list(parents)
        self.id = env.graph.register(self)
        self.generated: dict[int, RDD[T]] = {}
        self.remember_ms = 0
        self.persisted = False
        self.checkpoint_interval_ms: int | None = None

    @property
    def slide_ms(self) -> int:
        """Milliseconds between this stream's RDDs: the batch interval, unless windowed."""
        return self.parents[0].slide_ms if self.parents else self.env.batch_interval_ms

    def compute(self, batch_time: int) -> RDD[T] | None:
        """The RDD of `batch_time` (ms), or None when this stream has none then."""
        raise NotImplementedError

    def describe(self) -> str:
        """The stream's shape for the graph fingerprint: its kind, not its code."""
        return type(self).__name__

    def is_time_valid(self, batch_time: int) -> bool:
        """Whether `batch_time` (ms) falls on this stream's slide."""
        return (batch_time - self.env.graph.zero_time) % self.slide_ms == 0

    def get_or_compute(self, batch_time: int) -> RDD[T] | None:
        """The RDD of `batch_time` (ms), computed once and kept until clear_metadata."""
        if batch_time in self.generated:
            return self.generated[batch_time]
        if not self.is_time_valid(batch_time):
            return None
        rdd = self.compute(batch_time)
        if rdd is not None and self.persisted and not isinstance(rdd, PersistedRDD):
            rdd = PersistedRDD(rdd, f"cache_{self.id}_{batch_time}_")
        if rdd is not None:
            self.generated[batch_time] = rdd
        return rdd

    def clear_metadata(self, batch_time: int) -> list[RDD[T]]:
        """Forget RDDs no longer needed after batch_time; returns them so their shuffles go too."""
        keep_from = batch_time - max(self.remember_ms, self.slide_ms) + 1
        old = [t for t in self.generated if t < keep_from]
        return [self.generated.pop(t) for t in old]

    def remember(self, duration_ms: int) -> None:
        """Keep RDDs for at least `duration_ms`, for windows reaching back over this stream."""
        self.remember_ms = max(self.remember_ms, duration_ms)
        for parent in self.parents:
            parent.remember(duration_ms)

    def context(self) -> StreamingContext:
        """The StreamingContext this stream belongs to."""
        context = self.env.context
        if context is None:
            raise ConfigError("this stream was built outside a StreamingContext")
        return context

    def persist(self, storage_level: object = None) -> DStream[T]:
        """Keep each batch's RDD as blocks on executors once computed; returns this stream.

        Worth it when several outputs or a window read the same batch. kubestream
        keeps persisted partitions in executor memory, serialized, on two executors,
        whatever `storage_level` says (accepted for code ported from PySpark).
        """
        self.persisted = True
        return self

    def cache(self) -> DStream[T]:
        """persist() with the default storage level."""
        return self.persist()

    def checkpoint(self, interval: float) -> DStream[T]:
        """Ask for this stream's data to be checkpointed every `interval` seconds; returns it.

        Data is checkpointed for stateful and windowed streams (the others are
        recomputed from their sources). kubestream checkpoints all of them at one
        interval: the smallest any stream or the context asks for, rounded up to a
        multiple of every stateful stream's slide.

        Raises
        ------
        ConfigError
            interval is not a positive number of seconds, or not a multiple of this
            stream's slide.
        """
        from kubestream.streaming.windows import to_ms

        self.checkpoint_interval_ms = to_ms(interval, "interval", self.slide_ms)
        return self

    def slice(self, begin: int | datetime.datetime, end: int | datetime.datetime) -> list[RDD[T]]:
        """The RDDs this stream still holds for batch times from `begin` to `end`, inclusive.

        Parameters
        ----------
        begin, end : int or datetime
            Batch times as foreach_rdd gives them (int, ms since the epoch) or
            datetimes; each is rounded down to this stream's slide.

        Only generated batches are returned, oldest first; StreamingContext.remember
        keeps them longer. Call after start().

        Raises
        ------
        ConfigError
            A time is neither an int nor a datetime, end is before begin, or the
            context has not started.
        """
        begin_ms, end_ms = _batch_ms(begin, "begin"), _batch_ms(end, "end")
        require(end_ms >= begin_ms, "end", end, f"at or after begin ({begin!r})")
        context = self.env.context
        started = context is not None and context.state.value != "initialized"
        require(started, "the stream's context", "not started", "started before slice()")
        zero, step = self.env.graph.zero_time, self.slide_ms
        first = zero + (begin_ms - zero) // step * step
        return [self.generated[t] for t in range(first, end_ms + 1, step) if t in self.generated]

    # --- narrow transformations -----------------------------------------------------------
    def _op(self, op: PartitionFn) -> DStream[Any]:
        return OpDStream(self, op)

    def map(self, fn: Callable[[T], U]) -> DStream[U]:
        """A stream of fn(record) for every record."""
        return self._op(MapOp(fn))

    def flat_map(self, fn: Callable[[T], Iterable[U]]) -> DStream[U]:
        """A stream of every item of fn(record), for every record."""
        return self._op(FlatMapOp(fn))

    def filter(self, fn: Callable[[T], bool]) -> DStream[T]:
        """The records for which fn(record) is true."""
        return self._op(FilterOp(fn))

    def map_partitions(self, fn: Callable[[Iterator[T]], Iterable[U]]) -> DStream[U]:
        """fn applied once per partition of each batch, to an iterator of its records."""
        return self._op(MapPartitionsOp(fn))

    def map_partitions_with_index(
        self, fn: Callable[[int, Iterator[T]], Iterable[U]]
    ) -> DStream[U]:
        """fn(partition_index, records) once per partition of each batch."""
        return self._op(MapPartitionsWithIndexOp(fn))

    def map_values(self: DStream[tuple[K, V]], fn: Callable[[V], U]) -> DStream[tuple[K, U]]:
        """(key, fn(value)) for every (key, value) record; keys and partitioning unchanged."""
        return self._op(MapValuesOp(fn))

    def flat_map_values(
        self: DStream[tuple[K, V]], fn: Callable[[V], Iterable[U]]
    ) -> DStream[tuple[K, U]]:
        """(key, item) for every item of fn(value), for every (key, value) record."""
        return self._op(FlatMapValuesOp(fn))

    def glom(self) -> DStream[list[T]]:
        """One list per partition of each batch, holding that partition's records."""
        return self._op(GlomOp())

    def union(self, *others: DStream[T]) -> DStream[T]:
        """Each batch's records of this stream and of `others`.

        Raises
        ------
        ConfigError
            An argument is not a DStream, or the streams' slides differ (a windowed
            stream with a plain one).
        """
        return UnionDStream(self.env, [self, *others])

    def repartition(self, num_partitions: int) -> DStream[T]:
        """Each batch's records spread evenly over `num_partitions` partitions (a shuffle).

        Raises
        ------
        ConfigError
            num_partitions is not a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions)
        return TransformedDStream([self], lambda t, rdds: rdds[0].repartition(num_partitions))

    def partition_by(self: DStream[tuple[K, V]], num_partitions: int) -> DStream[tuple[K, V]]:
        """Each batch's (key, value) records hash-partitioned by key into `num_partitions`.

        Raises
        ------
        ConfigError
            num_partitions is not a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions)
        return TransformedDStream([self], lambda t, rdds: rdds[0].partition_by(num_partitions))

    # --- aggregations ---------------------------------------------------------------------
    def combine_by_key(
        self: DStream[tuple[K, V]],
        create_combiner: Callable[[V], C],
        merge_value: Callable[[C, V], C],
        merge_combiners: Callable[[C, C], C],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, C]]:
        """Per batch, each key's values combined into one (key, combiner) record (a shuffle).

        Parameters
        ----------
        create_combiner : (V) -> C
            Starts a combiner from a key's first value in a partition.
        merge_value : (C, V) -> C
            Adds a value to a combiner (map side, before the shuffle).
        merge_combiners : (C, C) -> C
            Merges two combiners of one key (reduce side); must be associative.
        num_partitions : int, optional
            Partitions of the result; default: the engine's default parallelism.

        Raises
        ------
        ConfigError
            num_partitions is not None nor a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions, optional=True)
        aggregator = Aggregator(create_combiner, merge_value, merge_combiners)
        return ShuffledDStream(self, aggregator, num_partitions)

    def reduce_by_key(
        self: DStream[tuple[K, V]],
        fn: Callable[[V, V], V],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, V]]:
        """Per batch, each key's values folded by fn (associative and commutative).

        Combines map side before the shuffle. num_partitions as in combine_by_key,
        and the same ConfigError.
        """
        return self.combine_by_key(identity, fn, fn, num_partitions)

    def group_by_key(
        self: DStream[tuple[K, V]], num_partitions: int | None = None
    ) -> DStream[tuple[K, list[V]]]:
        """Per batch, (key, [values]) for each key; prefer reduce_by_key to aggregate.

        num_partitions as in combine_by_key, and the same ConfigError.
        """
        require_count("num_partitions", num_partitions, optional=True)
        return ShuffledDStream(self, GROUP_BY_KEY, num_partitions)

    def count_by_value(self, num_partitions: int | None = None) -> DStream[tuple[T, int]]:
        """Per batch, (record, occurrences) for each distinct record (records must hash)."""
        return self.map_partitions(count_values).reduce_by_key(operator.add, num_partitions)

    def reduce(self, fn: Callable[[T, T], T]) -> DStream[T]:
        """One record per non-empty batch: its records folded by fn (associative, commutative)."""
        return self.map(_keyed_by_none).reduce_by_key(fn, 1).map(_second)

    def count(self) -> DStream[int]:
        """One record per batch, the batch's record count (0 for an empty batch)."""
        counts = self.map_partitions(_partition_count)
        return TransformedDStream([counts], _with_zero).reduce(operator.add)

    # --- joins ----------------------------------------------------------------------------
    def cogroup(
        self: DStream[tuple[K, V]],
        other: DStream[tuple[K, W]],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, tuple[list[V], list[W]]]]:
        """Per batch, (key, (this stream's values, other's values)) for every key of either.

        other is read at this stream's batch times (no values where it has no RDD
        then). num_partitions as in combine_by_key, and the same ConfigError.
        """
        require_count("num_partitions", num_partitions, optional=True)
        return TransformedDStream(
            [self, other], lambda t, rdds: rdds[0].cogroup(rdds[1], num_partitions=num_partitions)
        )

    def join(
        self: DStream[tuple[K, V]],
        other: DStream[tuple[K, W]],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, tuple[V, W]]]:
        """Per batch, (key, (v, w)) for every pair of values of a key found in both streams.

        num_partitions as in combine_by_key, and the same ConfigError.
        """
        require_count("num_partitions", num_partitions, optional=True)
        return TransformedDStream([self, other], lambda t, r: r[0].join(r[1], num_partitions))

    def left_outer_join(
        self: DStream[tuple[K, V]],
        other: DStream[tuple[K, W]],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, tuple[V, W | None]]]:
        """As join, keeping this stream's keys missing from other, paired with None."""
        require_count("num_partitions", num_partitions, optional=True)
        return TransformedDStream(
            [self, other], lambda t, r: r[0].left_outer_join(r[1], num_partitions)
        )

    def right_outer_join(
        self: DStream[tuple[K, V]],
        other: DStream[tuple[K, W]],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, tuple[V | None, W]]]:
        """As join, keeping other's keys missing from this stream, paired with None."""
        require_count("num_partitions", num_partitions, optional=True)
        return TransformedDStream(
            [self, other], lambda t, r: r[0].right_outer_join(r[1], num_partitions)
        )

    def full_outer_join(
        self: DStream[tuple[K, V]],
        other: DStream[tuple[K, W]],
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, tuple[V | None, W | None]]]:
        """As join, keeping the keys of either stream missing from the other, with None."""
        require_count("num_partitions", num_partitions, optional=True)
        return TransformedDStream(
            [self, other], lambda t, r: r[0].full_outer_join(r[1], num_partitions)
        )

    # --- windows ----------------------------------------------------------------------------
    def window(self, window: float, slide: float | None = None) -> DStream[T]:
        """Every `slide` seconds, the records of the last `window` seconds.

        Parameters
        ----------
        window : float
            Window length in seconds; a multiple of this stream's slide (the batch
            interval, for a stream that is not windowed).
        slide : float, optional
            Seconds between windows; a multiple of this stream's slide. Default: this
            stream's slide (a window every batch).

        Raises
        ------
        ConfigError
            window or slide is not a positive number of seconds, or not a multiple of
            this stream's slide.
        """
        from kubestream.streaming.windows import WindowedDStream, to_ms

        slide_ms = to_ms(slide, "slide", self.slide_ms) if slide is not None else self.slide_ms
        return WindowedDStream(self, to_ms(window, "window", self.slide_ms), slide_ms)

    def reduce_by_key_and_window(
        self: DStream[tuple[K, V]],
        reduce_fn: Callable[[V, V], V],
        inverse_fn: Callable[[V, V], V] | None = None,
        window: float = 0,
        slide: float | None = None,
        num_partitions: int | None = None,
        filter_fn: Callable[[tuple[K, V]], bool] | None = None,
    ) -> DStream[tuple[K, V]]:
        """Every `slide` seconds, each key's values over the last `window` seconds, reduced.

        Parameters
        ----------
        reduce_fn : (V, V) -> V
            Associative and commutative.
        inverse_fn : (V, V) -> V, optional
            Undoes reduce_fn: ``inverse_fn(reduce_fn(a, b), b) == a`` (subtraction for
            addition). With it each window is computed incrementally, as the previous
            window minus the batches that left plus those that arrived, so a slide
            costs the same whatever the window's length; keys stay after their values
            left (at reduce_fn's zero) unless filter_fn drops them. Without it, every
            window reduces all its batches again.
        window : float
            Window length in seconds; a multiple of this stream's slide.
        slide : float, optional
            Seconds between windows; a multiple of this stream's slide. Default: this
            stream's slide.
        num_partitions : int, optional
            Partitions of the result; default: the engine's default parallelism.
        filter_fn : ((K, V)) -> bool, optional
            Keeps the (key, value) records for which it is true, e.g. drops zero counts.

        Raises
        ------
        ConfigError
            window or slide is not a positive number of seconds or not a multiple of
            this stream's slide; num_partitions is not None nor at least 1.
        """
        from kubestream.streaming.windows import ReducedWindowedDStream, to_ms

        window_ms = to_ms(window, "window", self.slide_ms)
        slide_ms = to_ms(slide, "slide", self.slide_ms) if slide is not None else self.slide_ms
        require_count("num_partitions", num_partitions, optional=True)
        if inverse_fn is None:
            reduced = self.reduce_by_key(reduce_fn, num_partitions)
            windowed = reduced.window(window, slide).reduce_by_key(reduce_fn, num_partitions)
            return windowed.filter(filter_fn) if filter_fn is not None else windowed
        return ReducedWindowedDStream(
            self, reduce_fn, inverse_fn, window_ms, slide_ms, num_partitions, filter_fn
        )

    def group_by_key_and_window(
        self: DStream[tuple[K, V]],
        window: float,
        slide: float | None = None,
        num_partitions: int | None = None,
    ) -> DStream[tuple[K, list[V]]]:
        """Every `slide` seconds, (key, [values]) over the last `window` seconds.

        Values of a key come in batch order. window and slide as in window();
        num_partitions as in group_by_key; the same ConfigError.
        """
        require_count("num_partitions", num_partitions, optional=True)
        return self.window(window, slide).group_by_key(num_partitions)

    def reduce_by_window(
        self,
        reduce_fn: Callable[[T, T], T],
        inverse_fn: Callable[[T, T], T] | None,
        window: float,
        slide: float | None = None,
    ) -> DStream[T]:
        """Every `slide` seconds, one record: the last `window` seconds' records reduced.

        Arguments and errors as in reduce_by_key_and_window; nothing is emitted for an
        empty window.
        """
        keyed = self.map(_keyed_by_none)
        return keyed.reduce_by_key_and_window(reduce_fn, inverse_fn, window, slide, 1).map(_second)

    def count_by_window(self, window: float, slide: float | None = None) -> DStream[int]:
        """Every `slide` seconds, the number of records in the last `window` seconds.

        window and slide as in window(), and the same ConfigError.
        """
        return self.map(_one).reduce_by_window(operator.add, operator.sub, window, slide)

    def count_by_value_and_window(
        self, window: float, slide: float | None = None, num_partitions: int | None = None
    ) -> DStream[tuple[T, int]]:
        """Every `slide` seconds, (record, occurrences) over the last `window` seconds.

        Records with no occurrence left in the window are dropped. Arguments and
        errors as in reduce_by_key_and_window.
        """
        return self.map_partitions(count_values).reduce_by_key_and_window(
            operator.add, operator.sub, window, slide, num_partitions, _non_zero_value
        )

    # --- state ----------------------------------------------------------------------------
    def update_state_by_key(
        self: DStream[tuple[K, V]],
        update_fn: Callable[[list[V], S | None], S | None],
        num_partitions: int | None = None,
        initial: Iterable[tuple[K, S]] | None = None,
    ) -> DStream[tuple[K, S]]:
        """Every batch, (key, state) for every key with a state, kept across batches.

        Parameters
        ----------
        update_fn : (list[V], S | None) -> S | None
            Called every batch for every key with new values or a state:
            ``update_fn(new_values, old_state)``; new_values may be empty and
            old_state is None for a new key. Returns the new state, or None to
            remove the key. Runs on executors.
        num_partitions : int, optional
            Partitions of the state; default: the engine's default parallelism.
        initial : iterable of (K, S), optional
            The state before the first batch.

        State is persisted on two executors every batch, and written to the
        checkpoint directory (required with a checkpoint) every checkpoint interval.

        Raises
        ------
        ConfigError
            num_partitions is not None nor a whole number of at least 1.
        """
        from kubestream.streaming.state import StateDStream

        require_count("num_partitions", num_partitions, optional=True)
        return StateDStream(self, update_fn, num_partitions, initial)

    def map_with_state(
        self: DStream[tuple[K, V]], spec: StateSpec[K, V, S, U]
    ) -> MapWithStateDStream[K, S, U]:
        """Every batch, what spec.function returned for each record, with per-key state.

        See StateSpec for the function, timeout and initial state. The result's
        state_snapshots() is a stream of every key's (key, state) after each batch.

        Raises
        ------
        ConfigError
            spec is not a StateSpec.
        """
        from kubestream.streaming.state import MapWithStateDStream, StateSpec

        require(isinstance(spec, StateSpec), "spec", spec, "a StateSpec (StateSpec.of(...))")
        return MapWithStateDStream(self, spec)

    # --- arbitrary RDD functions ----------------------------------------------------------
    def transform(self, fn: Callable[..., RDD[U]]) -> DStream[U]:
        """A stream of fn(rdd), or fn(batch_time_ms, rdd), for every batch's RDD.

        fn runs on the driver as each batch is generated, and may use any RDD
        operator; it takes the batch time (int, ms since the epoch) when it has two
        positional parameters. If fn raises, or returns something other than an RDD
        (ConfigError), the error is logged and that batch's jobs are not generated.
        """
        with_time = arity(fn) >= 2
        return TransformedDStream(
            [self], lambda t, rdds: fn(t, rdds[0]) if with_time else fn(rdds[0])
        )

    def transform_with(self, other: DStream[W], fn: Callable[..., RDD[U]]) -> DStream[U]:
        """A stream of fn(rdd, other_rdd), or fn(batch_time_ms, rdd, other_rdd), per batch.

        As transform, with other's RDD of the same batch (empty when other has none).
        """
        with_time = arity(fn) >= 3
        return TransformedDStream(
            [self, other],
            lambda t, r: fn(t, r[0], r[1]) if with_time else fn(r[0], r[1]),
        )

    # --- outputs --------------------------------------------------------------------------
    def foreach_rdd(self, fn: Callable[..., None]) -> None:
        """Register fn(rdd), or fn(batch_time_ms, rdd), as an output run for every batch.

        fn runs on the driver, in batch order, and acts through RDD actions (collect,
        foreach, foreach_partition ...). An exception in it fails the batch; the
        context's on_batch_failure policy decides whether the job goes on.
        """
        with_time = arity(fn) >= 2
        self.env.graph.add_output(self, lambda t, rdd: fn(t, rdd) if with_time else fn(rdd))

    def pprint(self, num: int = 10) -> None:
        """Register an output printing each batch's time and its first `num` records.

        Raises
        ------
        ConfigError
            num is not a whole number of at least 0.
        """
        require_count("num", num, minimum=0)
        self.env.graph.add_output(self, lambda t, rdd: print_batch(t, rdd, num))

    def write_to_kafka(
        self,
        topic: str,
        kafka_params: Mapping[str, object],
        *,
        key: Callable[[Any], Any] | None = None,
        value: Callable[[Any], Any] | None = None,
        headers: Callable[[Any], Any] | None = None,
        partitioner: Callable[[Any], int] | None = None,
        transactional_id: str | None = None,
        source: DStream | None = None,
    ) -> None:
        """Write every batch's records to a Kafka topic; a batch is done once all are there.

        At-least-once by default, with an idempotent producer on each executor flushed
        before its task ends. With `transactional_id`, exactly once: the driver writes
        each batch and its source's end offsets in one Kafka transaction, and a replayed
        batch already committed is not written again (the output passes through the
        driver).

        Parameters
        ----------
        topic : str
            The topic to write to.
        kafka_params : mapping
            librdkafka settings, "bootstrap.servers" required.
        key : callable, optional
            fn(record) -> key (str, bytes, number or None). By default a (key, value)
            pair gives both and anything else is the value with no key.
        value : callable, optional
            fn(record) -> value; str is sent as UTF-8, bytes as they are.
        headers : callable, optional
            fn(record) -> [(name, value)].
        partitioner : callable, optional
            fn(record) -> partition; default Kafka's, by key.
        transactional_id : str, optional
            Write exactly once in transactions with this id (also the group that holds
            each committed batch's time).
        source : DStream, optional
            The kafka_stream whose offsets each transaction commits; found among this
            stream's ancestors when there is exactly one.

        Raises
        ------
        ConfigError
            A setting or the topic is invalid, or transactional_id is given without one
            kafka_stream to take offsets from.
        """
        from kubestream.streaming.sources.kafka.config import ClientConfig
        from kubestream.streaming.sources.kafka.records import RecordShape
        from kubestream.streaming.sources.kafka.sink import KafkaSink, TransactionalKafkaSink
        from kubestream.streaming.sources.kafka.stream import KafkaInputDStream

        try:
            config = ClientConfig.of(kafka_params)
        except ValueError as e:
            raise ConfigError(f"write_to_kafka: {e}") from None
        if not isinstance(topic, str) or not topic:
            raise ConfigError(f"write_to_kafka: topic must be a topic name, got {topic!r}")
        shape = RecordShape(key, value, headers)
        if transactional_id is None:
            self.env.graph.add_output(self, KafkaSink(config, topic, shape, partitioner))
            return
        sources = [s for s in self._ancestors() if isinstance(s, KafkaInputDStream)]
        chosen = source or (sources[0] if len(sources) == 1 else None)
        if not isinstance(chosen, KafkaInputDStream):
            raise ConfigError(
                "write_to_kafka: transactional_id needs the kafka_stream whose offsets each"
                f" transaction commits; this stream has {len(sources)}: pass source="
            )
        self.env.graph.add_output(
            self,
            TransactionalKafkaSink(config, topic, shape, partitioner, transactional_id, chosen),
        )

    def save_to_cassandra(
        self,
        keyspace: str,
        table: str,
        columns: Sequence[str] | Mapping[str, str | int] | None = None,
        *,
        connection: CassandraConnection | None = None,
        consistency_level: str = "LOCAL_QUORUM",
        ttl: int | None = None,
        concurrency: int = 64,
        batch_size_bytes: int = 4096,
        on_bad_record: str = "fail",
        dead_letter_dir: str | None = None,
        allow_counter_tables: bool = False,
    ) -> None:
        """Write every batch's records as rows of a Cassandra table; idempotent on replay.

        Each executor writes its partitions with a prepared INSERT whose write timestamp
        is the batch time (microseconds: batch time in ms x 1000). A retried task or a
        batch replayed after a driver crash rewrites the same cells with the same
        timestamp, so the table ends as an uninterrupted run leaves it, and a replay of
        an older batch never overwrites what a later batch wrote. Two records of one
        batch for the same primary key tie; Cassandra keeps the greater value, the same
        on every replay. Writes made outside this sink with the current time as their
        timestamp win over batches older than them. None writes a null (a tombstone).
        Rows of one partition key go in unlogged batches of at most `batch_size_bytes`.
        Counter tables are refused unless allowed: counter updates are not idempotent.

        Parameters
        ----------
        keyspace, table : str
            An existing table (checked before the first batch).
        columns : sequence of str or mapping, optional
            Column names: tuples and lists map by position, mappings by key, other
            objects (dataclasses, named tuples) by attribute of the same name. Or a
            mapping {column: key, attribute name or tuple index}. Default: all the
            table's columns in schema order (partition key, clustering, regular).
            The whole primary key must be among them.
        connection : CassandraConnection, optional
            Contact points, port, local data center, and credentials and TLS as
            references: names of environment variables (from the StreamingJob's
            secretRefs) and paths of mounted files. Default: 127.0.0.1:9042, no auth.
        consistency_level : str
            Write consistency level ("LOCAL_QUORUM", "ONE", "QUORUM", ...).
        ttl : int, optional
            Seconds each written cell lives.
        concurrency : int
            Statements in flight per task, 1-1024.
        batch_size_bytes : int
            Budget of a single-partition unlogged batch (values plus 24 B a cell); keep
            it under the server's batch_size_warn_threshold (5 KiB by default). 0 sends
            every row alone.
        on_bad_record : "fail" or "skip"
            A record that cannot be a row (missing field, wrong arity, None in a primary
            key column, a value of the wrong type): "fail" fails the batch with an error
            naming the record's position and column; "skip" writes the rest and counts
            it (a warning per batch names the first).
        dead_letter_dir : str, optional
            With "skip": skipped records as JSON lines (reason, repr of the record) in
            DIR/KEYSPACE.TABLE/batch-<ms>-part-<n>.jsonl, rewritten whole on replay.
        allow_counter_tables : bool
            Write to a counter table: each record's counter columns are added
            (UPDATE ... SET c = c + ?), one statement a row, never retried by the driver;
            at least once: a retried task or a replayed batch adds again. No ttl.

        Raises
        ------
        ConfigError
            A parameter is invalid; before the first batch, the table does not exist, is
            a counter table (not allowed), or lacks a column; an environment variable named for the
            credentials is unset.
        """
        from kubestream.streaming.sinks.cassandra.rows import ColumnMapping
        from kubestream.streaming.sinks.cassandra.sink import CassandraSink

        for name, value in (("keyspace", keyspace), ("table", table)):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"save_to_cassandra: {name} must be a name, got {value!r}")
        if connection is not None and not isinstance(connection, CassandraConnection):
            raise ConfigError(
                f"save_to_cassandra: connection must be a CassandraConnection, got {connection!r}"
            )
        options = WriteOptions(
            consistency_level=consistency_level,
            ttl=ttl,
            concurrency=concurrency,
            batch_size_bytes=batch_size_bytes,
            on_bad_record=on_bad_record,
            dead_letter_dir=dead_letter_dir,
            allow_counter_tables=allow_counter_tables,
        )
        mapping = None if columns is None else ColumnMapping.of(columns)
        sink = CassandraSink(connection or CassandraConnection(), keyspace, table, mapping, options)
        self.env.graph.add_output(self, sink)

    def _ancestors(self) -> list[DStream[Any]]:
        """This stream and every stream it is computed from."""
        seen: dict[int, DStream] = {}
        stack: list[DStream] = [self]
        while stack:
            stream = stack.pop()
            if stream.id not in seen:
                seen[stream.id] = stream
                stack.extend(stream.parents)
        return list(seen.values())

    def save_as_text_files(self, prefix: str, suffix: str | None = None) -> None:
        """Register an output writing each batch as text, one str(record) a line.

        Each batch becomes the directory PREFIX-<batch time ms>[.SUFFIX] holding one
        part-NNNNN file per partition and _SUCCESS, written by the driver (executors
        send it each partition's text) and renamed into place once complete, so a
        reader never sees half a batch. A rerun batch replaces its directory.
        """
        self.env.graph.add_output(self, lambda t, rdd: save_text_batch(t, rdd, prefix, suffix))


class StatefulDStream(DStream):
    """A stream whose RDD at t builds on its RDD at t - slide: data-checkpointed every N batches."""

    def checkpoint_records(self, batch_time: int) -> list[Any] | None:
        rdd = self.generated.get(batch_time)
        return None if rdd is None else rdd.collect()

    def checkpoint_changes(
        self, batch_time: int, since: int
    ) -> tuple[dict[Any, Any], list[Any]] | None:
        """(updated entries, removed keys) from batch `since` to `batch_time`, for an
        incremental data checkpoint; None when only a full one will do (the default)."""
        return None

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
        require(parents, "the streams of a union", parents, "at least one DStream")
        for stream in parents:
            require(isinstance(stream, DStream), "each stream of a union", stream, "a DStream")
        slides = sorted({p.slide_ms / 1000 for p in parents})
        require(len(slides) == 1, "the slides of a union's streams", slides, "equal (seconds)")
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
        require(isinstance(result, RDD), "a transform function's result", result, "an RDD")
        return result


def _batch_ms(value: object, name: str) -> int:
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    ok = isinstance(value, int) and not isinstance(value, bool)
    require(ok, name, value, "a batch time (int, ms since the epoch) or a datetime")
    return cast(int, value)


def arity(fn: Callable[..., Any]) -> int:
    """The positional parameters fn takes (1 when it cannot be inspected)."""
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
