"""The per-batch dataset (Spark's RDD): a lazy lineage the driver turns into tasks.

Narrow transformations append a partition operator; key-based ones add a
hash-partitioned shuffle with map-side combine. Actions run a job on the engine.
"""

from __future__ import annotations

import itertools
import operator
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from kubestream.core.ops import (
    GROUP_BY_KEY,
    Aggregator,
    FilterOp,
    FlatMapOp,
    FlatMapValuesOp,
    GlomOp,
    HashPartitioner,
    MapOp,
    MapPartitionsOp,
    MapPartitionsWithIndexOp,
    MapValuesOp,
    PartitionFn,
    identity,
    with_one,
)
from kubestream.core.tasks import (
    BlockSource,
    CoGroupPart,
    CoGroupSource,
    EmptySource,
    ExecutorAddress,
    FileSource,
    OutputSpec,
    ParallelSource,
    RangeSource,
    ShuffleSource,
    SourceSpec,
    StateSource,
    StoreBlock,
    UpdateState,
)
from kubestream.core.typevars import C, K, T, U, V, W
from kubestream.errors import require_count

if TYPE_CHECKING:
    from kubestream.core.engine import Engine

MapLocations = Callable[[int], tuple[ExecutorAddress, ...]]


@dataclass(frozen=True, slots=True)
class ShuffleDependency:
    rdd: RDD
    shuffle_id: int
    num_partitions: int
    partitioner: HashPartitioner | None
    aggregator: Aggregator | None


class RDD(Generic[T]):
    """A dataset of one batch, records of type T split into partitions that executors compute.

    Transformations are lazy and return a new RDD; actions (collect, count, take,
    reduce, foreach ...) run a job on the executors and return to the driver. User
    functions run on executors, so they must be picklable by cloudpickle.
    """

    def __init__(self, engine: Engine, num_partitions: int) -> None:
        self.engine = engine
        self.num_partitions = num_partitions
        self.id = engine.new_rdd_id()
        # Set when records of one key all sit in the partition this partitioner names.
        self.partitioner: HashPartitioner | None = None

    # --- lineage, implemented by subclasses ---------------------------------------------
    def narrow_parents(self) -> Sequence[RDD[Any]]:
        """Parents whose partition i makes this RDD's partition i (no shuffle between)."""
        return ()

    def shuffle_dependencies(self) -> Sequence[ShuffleDependency]:
        """The shuffles this RDD reads, each with the parent RDD that writes it."""
        return ()

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        """Source of partition `split` and the operators applied to it, in order."""
        raise NotImplementedError

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        """Executors holding partition `split`'s input, best first (empty: anywhere)."""
        return ()

    # --- narrow transformations -----------------------------------------------------------
    def _with(self, op: PartitionFn) -> RDD[Any]:
        return MapPartitionsRDD(self, op)

    def map(self, fn: Callable[[T], U]) -> RDD[U]:
        """fn(record) for every record."""
        return self._with(MapOp(fn))

    def flat_map(self, fn: Callable[[T], Iterable[U]]) -> RDD[U]:
        """Every item of fn(record), for every record."""
        return self._with(FlatMapOp(fn))

    def filter(self, fn: Callable[[T], bool]) -> RDD[T]:
        """The records for which fn(record) is true."""
        return self._with(FilterOp(fn))

    def map_partitions(self, fn: Callable[[Iterator[T]], Iterable[U]]) -> RDD[U]:
        """fn applied once per partition, to an iterator of its records."""
        return self._with(MapPartitionsOp(fn))

    def map_partitions_with_index(self, fn: Callable[[int, Iterator[T]], Iterable[U]]) -> RDD[U]:
        """fn(partition_index, records) once per partition."""
        return self._with(MapPartitionsWithIndexOp(fn))

    def map_values(self: RDD[tuple[K, V]], fn: Callable[[V], U]) -> RDD[tuple[K, U]]:
        """(key, fn(value)) for every (key, value) record."""
        return self._with(MapValuesOp(fn))

    def flat_map_values(self: RDD[tuple[K, V]], fn: Callable[[V], Iterable[U]]) -> RDD[tuple[K, U]]:
        """(key, item) for every item of fn(value), for every (key, value) record."""
        return self._with(FlatMapValuesOp(fn))

    def glom(self) -> RDD[list[T]]:
        """One list per partition, holding that partition's records."""
        return self._with(GlomOp())

    def key_by(self, fn: Callable[[T], K]) -> RDD[tuple[K, T]]:
        """(fn(record), record) for every record."""
        return self.map(_KeyBy(fn))

    def keys(self: RDD[tuple[K, V]]) -> RDD[K]:
        """The key of every (key, value) record."""
        return self.map(operator.itemgetter(0))

    def values(self: RDD[tuple[K, V]]) -> RDD[V]:
        """The value of every (key, value) record."""
        return self.map(operator.itemgetter(1))

    def union(self, *others: RDD[T]) -> RDD[T]:
        """The records of this RDD and of `others`, their partitions side by side (no shuffle)."""
        return UnionRDD(self.engine, [self, *others])

    # --- shuffles -------------------------------------------------------------------------
    def _partitions(self, num_partitions: int | None) -> int:
        require_count("num_partitions", num_partitions, optional=True)
        return num_partitions or self.engine.default_parallelism

    def combine_by_key(
        self: RDD[tuple[K, V]],
        create_combiner: Callable[[V], C],
        merge_value: Callable[[C, V], C],
        merge_combiners: Callable[[C, C], C],
        num_partitions: int | None = None,
    ) -> RDD[tuple[K, C]]:
        """Each key's values combined into one (key, combiner) record, hash-partitioned.

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
        n = self._partitions(num_partitions)
        aggregator = Aggregator(create_combiner, merge_value, merge_combiners)
        return ShuffledRDD(self, n, HashPartitioner(n), aggregator)

    def reduce_by_key(
        self: RDD[tuple[K, V]], fn: Callable[[V, V], V], num_partitions: int | None = None
    ) -> RDD[tuple[K, V]]:
        """Each key's values folded by fn (associative and commutative), map side first.

        num_partitions as in combine_by_key, and the same ConfigError.
        """
        return self.combine_by_key(identity, fn, fn, num_partitions)

    def group_by_key(
        self: RDD[tuple[K, V]], num_partitions: int | None = None
    ) -> RDD[tuple[K, list[V]]]:
        """(key, [values]) for each key. num_partitions as in combine_by_key."""
        return self.combine_by_key(
            GROUP_BY_KEY.create_combiner,
            GROUP_BY_KEY.merge_value,
            GROUP_BY_KEY.merge_combiners,
            num_partitions,
        )

    def count_by_value_rdd(self, num_partitions: int | None = None) -> RDD[tuple[T, int]]:
        """(record, occurrences) for each distinct record, as an RDD (count_by_value's dict)."""
        return self.map(with_one).reduce_by_key(operator.add, num_partitions)

    def partition_by(self: RDD[tuple[K, V]], num_partitions: int) -> RDD[tuple[K, V]]:
        """The (key, value) records hash-partitioned by key into `num_partitions`.

        Raises
        ------
        ConfigError
            num_partitions is not a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions)
        return ShuffledRDD(self, num_partitions, HashPartitioner(num_partitions), None)

    def repartition(self, num_partitions: int) -> RDD[T]:
        """The records spread evenly over `num_partitions` partitions (a shuffle).

        Raises
        ------
        ConfigError
            num_partitions is not a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions)
        return ShuffledRDD(self, num_partitions, None, None)

    def cogroup(
        self: RDD[tuple[K, Any]], *others: RDD[tuple[K, Any]], num_partitions: int | None = None
    ) -> RDD[tuple[K, tuple[list[Any], ...]]]:
        """(key, (values in self, values in each of others)) for every key of any of them.

        A side already hash-partitioned into num_partitions is read in place, not
        shuffled. num_partitions as in combine_by_key, and the same ConfigError.
        """
        return CoGroupedRDD(self.engine, [self, *others], self._partitions(num_partitions))

    def join(
        self: RDD[tuple[K, V]], other: RDD[tuple[K, W]], num_partitions: int | None = None
    ) -> RDD[tuple[K, tuple[V, W]]]:
        """(key, (v, w)) for every pair of values of a key found in both RDDs."""
        return self.cogroup(other, num_partitions=num_partitions).flat_map_values(_inner_pairs)

    def left_outer_join(
        self: RDD[tuple[K, V]], other: RDD[tuple[K, W]], num_partitions: int | None = None
    ) -> RDD[tuple[K, tuple[V, W | None]]]:
        """As join, keeping this RDD's keys missing from other, paired with None."""
        return self.cogroup(other, num_partitions=num_partitions).flat_map_values(_left_pairs)

    def right_outer_join(
        self: RDD[tuple[K, V]], other: RDD[tuple[K, W]], num_partitions: int | None = None
    ) -> RDD[tuple[K, tuple[V | None, W]]]:
        """As join, keeping other's keys missing from this RDD, paired with None."""
        return self.cogroup(other, num_partitions=num_partitions).flat_map_values(_right_pairs)

    def full_outer_join(
        self: RDD[tuple[K, V]], other: RDD[tuple[K, W]], num_partitions: int | None = None
    ) -> RDD[tuple[K, tuple[V | None, W | None]]]:
        """As join, keeping the keys of either RDD missing from the other, with None."""
        return self.cogroup(other, num_partitions=num_partitions).flat_map_values(_full_pairs)

    # --- actions --------------------------------------------------------------------------
    def collect(self) -> list[T]:
        """Every record, on the driver, in partition order: the whole RDD must fit in memory."""
        parts = self.engine.run_job(self, _collect_partition)
        return list(itertools.chain.from_iterable(parts))

    def count(self) -> int:
        """The number of records."""
        return sum(self.engine.run_job(self, _count_partition))

    def take(self, n: int) -> list[T]:
        """The first n records (fewer if the RDD has fewer), in partition order.

        Scans partitions one, then two, four... at a time, as Spark does, until n records.
        """
        taken: list[Any] = []
        scanned, step = 0, 1
        while len(taken) < n and scanned < self.num_partitions:
            parts = list(range(scanned, min(scanned + step, self.num_partitions)))
            for part in self.engine.run_job(self, _Take(n - len(taken)), parts):
                taken.extend(part[: n - len(taken)])
            scanned += len(parts)
            step *= 2
        return taken

    def first(self) -> T:
        """The first record.

        Raises
        ------
        ValueError
            The RDD is empty (a property of the data, as in PySpark, not a user mistake).
        """
        rows = self.take(1)
        if not rows:
            raise ValueError("first() on an empty RDD")
        return rows[0]

    def is_empty(self) -> bool:
        """Whether the RDD has no record (reads at most one)."""
        return self.num_partitions == 0 or not self.take(1)

    def reduce(self, fn: Callable[[T, T], T]) -> T:
        """The records folded by fn (associative and commutative), per partition then on the driver.

        Raises
        ------
        ValueError
            The RDD is empty, as in PySpark.
        """
        parts = [p for p in self.engine.run_job(self, _Reduce(fn)) if p]
        if not parts:
            raise ValueError("reduce() of an empty RDD")
        result = parts[0][0]
        for (value,) in parts[1:]:
            result = fn(result, value)
        return result  # type: ignore[no-any-return]

    def sum(self) -> Any:
        """The sum of the records (0 for an empty RDD)."""
        return sum(self.engine.run_job(self, _sum_partition))

    def count_by_value(self) -> dict[T, int]:
        """{record: occurrences} on the driver."""
        return dict(self.count_by_value_rdd().collect())

    def collect_as_map(self: RDD[tuple[K, V]]) -> dict[K, V]:
        """The (key, value) records as a dict on the driver; a repeated key keeps one value."""
        return dict(self.collect())

    def foreach(self, fn: Callable[[T], None]) -> None:
        """Run fn(record) for every record, on the executors."""
        self.engine.run_job(self, _Foreach(fn))

    def foreach_partition(self, fn: Callable[[Iterator[T]], None]) -> None:
        """Run fn(records) once per partition, on the executors (open a connection once)."""
        self.engine.run_job(self, _ForeachPartition(fn))


class SourceRDD(RDD):
    """An RDD whose partitions are read straight from a source spec."""

    def __init__(
        self,
        engine: Engine,
        sources: Sequence[SourceSpec],
        preferred: Sequence[tuple[str, ...]] = (),
    ) -> None:
        super().__init__(engine, len(sources))
        self.sources = list(sources)
        self.preferred = list(preferred)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        source = self.sources[split]
        if isinstance(source, BlockSource):
            locations = self.engine.locate(source.block_id, source.locations)
            return BlockSource(source.block_id, locations, source.wal_path), []
        return source, []

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        return self.preferred[split] if self.preferred else ()


def parallel_sources(records: Sequence[Any], slices: int) -> list[SourceSpec]:
    slices = max(1, min(slices, len(records))) if records else 0
    size, extra = divmod(len(records), slices) if slices else (0, 0)
    out: list[SourceSpec] = []
    start = 0
    for i in range(slices):
        stop = start + size + (1 if i < extra else 0)
        out.append(ParallelSource(tuple(records[start:stop])))
        start = stop
    return out


def range_sources(start: int, stop: int, slices: int) -> list[SourceSpec]:
    total = max(0, stop - start)
    slices = max(1, min(slices, total)) if total else 0
    bounds = [start + total * i // slices for i in range(slices + 1)]
    return [RangeSource(a, b) for a, b in itertools.pairwise(bounds)]


MIN_SPLIT_BYTES = 1 << 20
MAX_SPLIT_BYTES = 128 << 20


def file_sources(paths: Sequence[str], parallelism: int = 1) -> list[SourceSpec]:
    """Line splits of the files, about total / parallelism bytes each (1 to 128 MiB, as
    Spark's maxSplitBytes), so a large file is shared by the executors."""
    sizes = [os.path.getsize(p) for p in paths]
    target = max(MIN_SPLIT_BYTES, min(MAX_SPLIT_BYTES, -(-sum(sizes) // max(1, parallelism))))
    out: list[SourceSpec] = []
    for path, size in zip(paths, sizes, strict=True):
        pieces = max(1, -(-size // target))
        bounds = [size * i // pieces for i in range(pieces + 1)]
        out += [
            FileSource(path, a, None if b == size else b) for a, b in itertools.pairwise(bounds)
        ]
    return out


def block_sources(
    blocks: Sequence[tuple[str, tuple[ExecutorAddress, ...], str | None]],
) -> list[SourceSpec]:
    return [BlockSource(block_id, locations, wal) for block_id, locations, wal in blocks]


def empty_sources() -> list[SourceSpec]:
    return [EmptySource()]


class PersistedRDD(RDD):
    """An RDD computed once and kept as blocks on two executors, so later batches start from it.

    State and window streams persist every batch's RDD: lineage stays one batch
    long, and losing one executor leaves a copy. Materialised lazily by the DAG
    scheduler, on the job thread, in batch order. Once materialised it lets go of
    its parent (as Spark's checkpointed RDDs do) and remembers only the shuffles
    its lineage made, so cleanup reaches them when the RDD is dropped.
    """

    def __init__(
        self, parent: RDD, block_prefix: str, partitioner: HashPartitioner | None = None
    ) -> None:
        super().__init__(parent.engine, parent.num_partitions)
        self.parent: RDD | None = parent
        self.block_prefix = block_prefix
        self.partitioner = partitioner or parent.partitioner
        self.blocks: list[tuple[str, tuple[ExecutorAddress, ...]]] | None = None
        self.shuffles_beneath: frozenset[int] = frozenset()
        self.lock = threading.Lock()

    def block_id(self, split: int) -> str:
        return f"{self.block_prefix}{split}"

    def materialised(self, blocks: list[tuple[str, tuple[ExecutorAddress, ...]]]) -> None:
        """Its blocks are stored: keep where they are and the shuffles beneath, drop the lineage."""
        parent = self.parent
        self.shuffles_beneath = frozenset(lineage([parent], own=True).shuffles if parent else ())
        self.blocks = blocks
        self.parent = None

    def narrow_parents(self) -> Sequence[RDD]:
        return () if self.parent is None else (self.parent,)

    def store_output(self, split: int, peers: tuple[ExecutorAddress, ...]) -> OutputSpec:
        """What the task computing `split` of the parent does with it: keep it here and on
        the first of `peers` that takes a copy."""
        return StoreBlock(self.block_id(split), peers)

    def task_preference(self, split: int) -> tuple[str, ...]:
        """Executors the task computing `split` should run on."""
        return self.parent.preferred_executors(split) if self.parent is not None else ()

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        if self.blocks is None:
            raise RuntimeError(f"persisted RDD {self.id} planned before it was materialised")
        block_id, locations = self.blocks[split]
        return BlockSource(block_id, self.engine.locate(block_id, locations)), []

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        if self.blocks is None:
            return ()
        return tuple(loc.executor_id for loc in self.blocks[split][1])


class StateRDD(PersistedRDD):
    """One batch's version of a keyed state, kept as dicts in executors' memory.

    `records` ((key, value) pairs) are hash-partitioned the state's way, in place when
    they already are, and each partition is applied by `updater` (see tasks.UpdateState)
    to version `base` on the executor holding it: the state never crosses the network,
    and only what changed goes to the replica. `base` None starts from empty (the
    updater then loads a first version, e.g. a checkpoint's entries). Read back, a
    partition is its (key, state) entries.
    """

    def __init__(
        self,
        records: RDD,
        base: StateRDD | None,
        updater: Callable[..., Any],
        family: str,
        batch_time: int,
        num_partitions: int,
    ) -> None:
        if base is not None:
            num_partitions = base.num_partitions
        partitioner = HashPartitioner(num_partitions)
        if records.partitioner != partitioner or records.num_partitions != num_partitions:
            records = ShuffledRDD(records, num_partitions, partitioner, None)
        super().__init__(records, f"{family}_{batch_time}_", partitioner)
        self.base = base
        self.updater = updater
        self.family = family
        self.batch_time = batch_time

    def narrow_parents(self) -> Sequence[RDD]:
        return tuple(r for r in (self.parent, self.base) if r is not None)

    def store_output(self, split: int, peers: tuple[ExecutorAddress, ...]) -> OutputSpec:
        base = None
        if self.base is not None:
            source, _ = self.base.plan(split, _no_shuffles)
            assert isinstance(source, StateSource)
            base = source
        return UpdateState(
            self.family,
            self.block_id(split),
            base,
            self.engine.functions.ref(self.updater),
            self.batch_time,
            peers,
        )

    def task_preference(self, split: int) -> tuple[str, ...]:
        """Where the previous version is: the update reads it in place."""
        base = self.base.preferred_executors(split) if self.base is not None else ()
        return tuple(dict.fromkeys(base + super().task_preference(split)))

    def materialised(self, blocks: list[tuple[str, tuple[ExecutorAddress, ...]]]) -> None:
        super().materialised(blocks)
        self.base = None

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        if self.blocks is None:
            raise RuntimeError(f"state RDD {self.id} planned before it was materialised")
        block_id, locations = self.blocks[split]
        return StateSource(block_id, self.engine.locate(block_id, locations)), []


class StateViewRDD(RDD):
    """Another view of a state version: the records its batch emitted (`mapped`)."""

    def __init__(self, state: StateRDD, view: str) -> None:
        super().__init__(state.engine, state.num_partitions)
        self.state = state
        self.view = view

    def narrow_parents(self) -> Sequence[RDD]:
        return (self.state,)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        source, ops = self.state.plan(split, locate)
        assert isinstance(source, StateSource)
        return StateSource(source.block_id, source.locations, self.view), ops

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        return self.state.preferred_executors(split)


def _no_shuffles(shuffle_id: int) -> tuple[ExecutorAddress, ...]:
    raise RuntimeError("a state version is planned without shuffles")


@dataclass
class Lineage:
    """What a set of RDDs holds on executors: shuffle outputs and persisted block families."""

    shuffles: set[int]
    block_prefixes: set[str]


def lineage(rdds: Iterable[RDD], own: bool = False) -> Lineage:
    """Every shuffle and persisted RDD beneath rdds, through persisted RDDs of any state.

    A materialised persisted RDD contributes its blocks and the shuffles its lineage
    made (unless `own`: then only what rdds themselves made, down to stored blocks);
    its parent is gone, so the walk is only as long as the unmaterialised lineage.
    """
    found = Lineage(set(), set())
    for rdd in walk_lineage(rdds, across_shuffles=True):
        if isinstance(rdd, PersistedRDD) and not (own and rdd.blocks is not None):
            found.block_prefixes.add(rdd.block_prefix)
            found.shuffles.update(rdd.shuffles_beneath)
        found.shuffles.update(dep.shuffle_id for dep in rdd.shuffle_dependencies())
    return found


class MapPartitionsRDD(RDD):
    """parent with op applied; `partitioner` only when op keeps every record's key."""

    def __init__(
        self, parent: RDD, op: PartitionFn, partitioner: HashPartitioner | None = None
    ) -> None:
        super().__init__(parent.engine, parent.num_partitions)
        self.parent = parent
        self.op = op
        self.partitioner = partitioner

    def narrow_parents(self) -> Sequence[RDD]:
        return (self.parent,)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        source, ops = self.parent.plan(split, locate)
        return source, [*ops, self.op]

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        return self.parent.preferred_executors(split)


class UnionRDD(RDD):
    def __init__(self, engine: Engine, parents: Sequence[RDD]) -> None:
        super().__init__(engine, sum(p.num_partitions for p in parents))
        self.parents = list(parents)

    def narrow_parents(self) -> Sequence[RDD]:
        return self.parents

    def _locate(self, split: int) -> tuple[RDD, int]:
        for parent in self.parents:
            if split < parent.num_partitions:
                return parent, split
            split -= parent.num_partitions
        raise IndexError(split)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        parent, inner = self._locate(split)
        return parent.plan(inner, locate)

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        parent, inner = self._locate(split)
        return parent.preferred_executors(inner)


class ShuffledRDD(RDD):
    def __init__(
        self,
        parent: RDD,
        num_partitions: int,
        partitioner: HashPartitioner | None,
        aggregator: Aggregator | None,
    ) -> None:
        super().__init__(parent.engine, num_partitions)
        self.partitioner = partitioner
        self.dependency = ShuffleDependency(
            parent, parent.engine.new_shuffle_id(), num_partitions, partitioner, aggregator
        )

    def shuffle_dependencies(self) -> Sequence[ShuffleDependency]:
        return (self.dependency,)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        dep = self.dependency
        aggregator = self.engine.functions.ref(dep.aggregator) if dep.aggregator else None
        return ShuffleSource(dep.shuffle_id, split, locate(dep.shuffle_id), aggregator), []


class CoGroupedRDD(RDD):
    """Records grouped by key across parents. A parent already partitioned the same way
    (persisted state, a reduce_by_key's output) is read in place, as Spark's one-to-one
    dependency: only the others are shuffled, so state never crosses the network."""

    def __init__(self, engine: Engine, parents: Sequence[RDD], num_partitions: int) -> None:
        super().__init__(engine, num_partitions)
        partitioner = HashPartitioner(num_partitions)
        self.partitioner = partitioner
        self.sides: list[RDD | ShuffleDependency] = [
            p
            if p.partitioner == partitioner and _reads_in_place(p)
            else ShuffleDependency(p, engine.new_shuffle_id(), num_partitions, partitioner, None)
            for p in parents
        ]

    def narrow_parents(self) -> Sequence[RDD]:
        return [side for side in self.sides if isinstance(side, RDD)]

    def shuffle_dependencies(self) -> Sequence[ShuffleDependency]:
        return [side for side in self.sides if isinstance(side, ShuffleDependency)]

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        parts = []
        for side in self.sides:
            if isinstance(side, ShuffleDependency):
                source = ShuffleSource(side.shuffle_id, split, locate(side.shuffle_id), None)
                parts.append(CoGroupPart(source))
                continue
            inner, ops = side.plan(split, locate)
            if not isinstance(inner, BlockSource | ShuffleSource | StateSource):
                raise RuntimeError(f"RDD {side.id} cannot be read in place by a cogroup")
            refs = tuple(self.engine.functions.ref(op) for op in ops)
            parts.append(CoGroupPart(inner, refs))
        return CoGroupSource(tuple(parts)), [_cogroup_values]

    def preferred_executors(self, split: int) -> tuple[str, ...]:
        preferred: tuple[str, ...] = ()
        for side in self.narrow_parents():
            preferred += side.preferred_executors(split)
        return tuple(dict.fromkeys(preferred))


def _reads_in_place(rdd: RDD) -> bool:
    """Whether rdd's partition is a block or a shuffle read plus operators (no cogroup, no file)."""
    while isinstance(rdd, MapPartitionsRDD):
        rdd = rdd.parent
    return isinstance(rdd, PersistedRDD | ShuffledRDD)


# Module-level helpers, so their pickles (and hashes) are stable across batches.
def walk_lineage(
    roots: Iterable[RDD],
    across_shuffles: bool = False,
    stop: Callable[[RDD], bool] | None = None,
) -> Iterator[RDD]:
    """Every RDD reachable from `roots`, each once: through narrow edges, and through shuffle
    edges too when `across_shuffles`. An RDD for which `stop` is true is yielded but not walked
    past. The one walk the schedulers and the cleanup share."""
    stack, seen = list(roots), set()
    while stack:
        rdd = stack.pop()
        if rdd.id in seen:
            continue
        seen.add(rdd.id)
        yield rdd
        if stop is not None and stop(rdd):
            continue
        if across_shuffles:
            stack.extend(dep.rdd for dep in rdd.shuffle_dependencies())
        stack.extend(rdd.narrow_parents())


def _cogroup_values(index: int, records: Iterator[Any]) -> Iterator[Any]:
    return ((key, tuple(sides)) for key, sides in records)


def _inner_pairs(sides: tuple[list[Any], ...]) -> list[tuple[Any, Any]]:
    left, right = sides
    return [(v, w) for v in left for w in right]


def _left_pairs(sides: tuple[list[Any], ...]) -> list[tuple[Any, Any]]:
    left, right = sides
    return [(v, w) for v in left for w in (right or [None])]


def _right_pairs(sides: tuple[list[Any], ...]) -> list[tuple[Any, Any]]:
    left, right = sides
    return [(v, w) for v in (left or [None]) for w in right]


def _full_pairs(sides: tuple[list[Any], ...]) -> list[tuple[Any, Any]]:
    left, right = sides
    return [(v, w) for v in (left or [None]) for w in (right or [None])]


@dataclass(frozen=True, slots=True)
class _KeyBy:
    fn: Callable[[Any], Any]

    def __call__(self, value: Any) -> tuple[Any, Any]:
        return self.fn(value), value


def _collect_partition(index: int, records: Iterator[Any]) -> list[Any]:
    return list(records)


def _count_partition(index: int, records: Iterator[Any]) -> int:
    return sum(1 for _ in records)


def _sum_partition(index: int, records: Iterator[Any]) -> Any:
    return sum(records)


@dataclass(frozen=True, slots=True)
class _Take:
    n: int

    def __call__(self, index: int, records: Iterator[Any]) -> list[Any]:
        return list(itertools.islice(records, self.n))


@dataclass(frozen=True, slots=True)
class _Reduce:
    fn: Callable[[Any, Any], Any]

    def __call__(self, index: int, records: Iterator[Any]) -> list[Any]:
        it = iter(records)
        try:
            result = next(it)
        except StopIteration:
            return []
        for value in it:
            result = self.fn(result, value)
        return [result]


@dataclass(frozen=True, slots=True)
class _Foreach:
    fn: Callable[[Any], None]

    def __call__(self, index: int, records: Iterator[Any]) -> None:
        for record in records:
            self.fn(record)


@dataclass(frozen=True, slots=True)
class _ForeachPartition:
    fn: Callable[[Iterator[Any]], None]

    def __call__(self, index: int, records: Iterator[Any]) -> None:
        self.fn(records)
