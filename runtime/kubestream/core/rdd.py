"""The per-batch dataset (Spark's RDD): a lazy lineage the driver turns into tasks.

Narrow transformations append a partition operator; key-based ones add a
hash-partitioned shuffle with map-side combine. Actions run a job on the engine.
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import heapq
import itertools
import math
import operator
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, cast

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
    count_values,
    identity,
)
from kubestream.core.tasks import (
    BlockSource,
    CoGroupPart,
    CoGroupSource,
    ConcatSource,
    EmptySource,
    ExecutorAddress,
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
from kubestream.errors import require, require_count

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

    def state_read(self, split: int) -> tuple[StateRDD, StateSource, list[PartitionFn]] | None:
        """When partition `split` reads a state version not yet computed, through narrow steps
        that keep its partitions: that version, how it is read, and the operators after."""
        return None

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
        return self.map_partitions(count_values).reduce_by_key(operator.add, num_partitions)

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

    # --- set operations, sorting, indexing (Spark's, for transform functions) ----------------
    def distinct(self, num_partitions: int | None = None) -> RDD[T]:
        """Each distinct record once (records must hash); a shuffle.

        num_partitions as in combine_by_key, and the same ConfigError.
        """
        return self.map(_with_none).reduce_by_key(_first, num_partitions).keys()

    def subtract_by_key(
        self: RDD[tuple[K, V]], other: RDD[tuple[K, Any]], num_partitions: int | None = None
    ) -> RDD[tuple[K, V]]:
        """This RDD's (key, value) records whose key is not in other; a shuffle."""
        grouped = self.cogroup(other, num_partitions=num_partitions)
        return grouped.flat_map_values(_only_left)

    def subtract(self, other: RDD[Any], num_partitions: int | None = None) -> RDD[T]:
        """This RDD's records not found in other, duplicates kept (records must hash)."""
        mine = self.map(_with_none)
        return mine.subtract_by_key(other.map(_with_none), num_partitions).keys()

    def intersection(self, other: RDD[Any], num_partitions: int | None = None) -> RDD[T]:
        """Each record found in both RDDs, once (records must hash); a shuffle."""
        grouped = self.map(_with_none).cogroup(other.map(_with_none), num_partitions=num_partitions)
        return grouped.filter(_in_both).keys()

    def cartesian(self, other: RDD[U]) -> RDD[tuple[T, U]]:
        """(a, b) for every record a of this RDD and b of other.

        Partition i of this RDD meets partition j of other in one task, as in
        Spark: each side is read once per partition of the other (a shuffle).
        """
        n, m = self.num_partitions, other.num_partitions
        left = self.map_partitions_with_index(_Spread(m, left=True))
        right = other.map_partitions_with_index(_Spread(n, left=False))
        grouped = left.cogroup(right, num_partitions=max(1, n * m))
        return grouped.flat_map(_cartesian_pairs)

    def sort_by(
        self,
        key_fn: Callable[[T], Any],
        ascending: bool = True,
        num_partitions: int | None = None,
    ) -> RDD[T]:
        """The records ordered by key_fn(record): partition 0 first, each partition sorted.

        Runs a job at once to sample keys for the partition bounds, as Spark's
        range partitioner does. Keys must be mutually comparable.

        Parameters
        ----------
        key_fn : (T) -> key
            The sort key of a record.
        ascending : bool
            False for descending order.
        num_partitions : int, optional
            Partitions of the result; default: this RDD's partition count.

        Raises
        ------
        ConfigError
            num_partitions is not None nor a whole number of at least 1.
        """
        require_count("num_partitions", num_partitions, optional=True)
        n = num_partitions or max(1, self.num_partitions)
        bounds: list[Any] = []
        if n > 1:
            sample = sorted(
                itertools.chain.from_iterable(
                    self.engine.run_job(self, _SampleKeys(key_fn, 20 * n))
                )
            )
            bounds = [sample[len(sample) * (i + 1) // n] for i in range(n - 1)] if sample else []
        keyed = self.map_partitions(_Bucket(key_fn, tuple(bounds), ascending, n))
        spread = ShuffledRDD(keyed, n, HashPartitioner(n), None)
        return spread.map_partitions(_SortPartition(key_fn, ascending))

    def sort_by_key(
        self: RDD[tuple[K, V]],
        ascending: bool = True,
        num_partitions: int | None = None,
        key_fn: Callable[[K], Any] = identity,
    ) -> RDD[tuple[K, V]]:
        """The (key, value) records ordered by key_fn(key); as sort_by, same ConfigError."""
        return self.sort_by(_KeyOf(key_fn), ascending, num_partitions)

    def zip_with_index(self) -> RDD[tuple[T, int]]:
        """(record, index) with indexes 0, 1, ... in partition order.

        With more than one partition, runs a job at once to count each partition,
        as Spark does; the records' order must be the same when recomputed.
        """
        counts = self.engine.run_job(self, _count_partition) if self.num_partitions > 1 else []
        offsets = tuple(itertools.accumulate([0, *counts]))
        return self.map_partitions_with_index(_ZipWithIndex(offsets))

    def aggregate_by_key(
        self: RDD[tuple[K, V]],
        zero: U,
        seq_fn: Callable[[U, V], U],
        comb_fn: Callable[[U, U], U],
        num_partitions: int | None = None,
    ) -> RDD[tuple[K, U]]:
        """Each key's values folded into a copy of `zero` by seq_fn, partial results merged
        by comb_fn (associative). num_partitions as in combine_by_key."""
        return self.combine_by_key(_StartFrom(zero, seq_fn), seq_fn, comb_fn, num_partitions)

    def fold_by_key(
        self: RDD[tuple[K, V]],
        zero: V,
        fn: Callable[[V, V], V],
        num_partitions: int | None = None,
    ) -> RDD[tuple[K, V]]:
        """aggregate_by_key with one function: zero must be its identity (0 for +)."""
        return self.aggregate_by_key(zero, fn, fn, num_partitions)

    def group_by(
        self, fn: Callable[[T], K], num_partitions: int | None = None
    ) -> RDD[tuple[K, list[T]]]:
        """(fn(record), [records with that key]) for each key; as group_by_key."""
        grouped = self.key_by(fn).group_by_key(num_partitions)
        return cast("RDD[tuple[K, list[T]]]", grouped)

    def zip_with_unique_id(self) -> RDD[tuple[T, int]]:
        """(record, id): ids unique but not consecutive (partition k gets k, k+n, k+2n ...),
        with no job run, unlike zip_with_index."""
        return self.map_partitions_with_index(_UniqueIds(self.num_partitions))

    def sample(self, with_replacement: bool, fraction: float, seed: int | None = None) -> RDD[T]:
        """About `fraction` of the records, chosen at random per partition.

        Parameters
        ----------
        with_replacement : bool
            True: a record may be chosen several times (fraction is then the
            expected times each is chosen, any number >= 0); False: each at most once
            (fraction is a probability, 0 to 1).
        seed : int, optional
            Makes the sample repeatable; default: a random one.

        Raises
        ------
        ConfigError
            fraction is out of range.
        """
        top = float("inf") if with_replacement else 1.0
        require(
            isinstance(fraction, int | float) and 0 <= fraction <= top,
            "fraction",
            fraction,
            "a number from 0" + (" up" if with_replacement else " to 1"),
        )
        seed = random.randrange(2**32) if seed is None else seed
        return self.map_partitions_with_index(_Sample(with_replacement, fraction, seed))

    def repartition_and_sort_within_partitions(
        self: RDD[tuple[K, V]],
        num_partitions: int | None = None,
        ascending: bool = True,
        key_fn: Callable[[K], Any] = identity,
    ) -> RDD[tuple[K, V]]:
        """Hash-partitioned by key, each partition sorted by key_fn(key) (one shuffle).

        Raises
        ------
        ConfigError
            num_partitions is not None nor a whole number of at least 1.
        """
        n = self._partitions(num_partitions)
        shuffled = ShuffledRDD(self, n, HashPartitioner(n), None)
        return shuffled.map_partitions(_SortPairs(_KeyOf(key_fn), ascending))

    # --- more actions -----------------------------------------------------------------------
    def aggregate(self, zero: U, seq_fn: Callable[[U, T], U], comb_fn: Callable[[U, U], U]) -> U:
        """Each partition folded into a copy of `zero` by seq_fn, the results merged into
        another copy by comb_fn on the driver. zero must be the identity of both."""
        result = copy.deepcopy(zero)
        for part in self.engine.run_job(self, _Aggregate(zero, seq_fn)):
            result = comb_fn(result, part)
        return result

    def fold(self, zero: T, fn: Callable[[T, T], T]) -> T:
        """aggregate with one function: zero must be its identity (0 for +, [] for concat)."""
        return self.aggregate(zero, fn, fn)

    def max(self, key: Callable[[T], Any] | None = None) -> T:
        """The largest record (by key(record) when given). ValueError if empty, as reduce."""
        return self.reduce(_Max(key))

    def min(self, key: Callable[[T], Any] | None = None) -> T:
        """The smallest record (by key(record) when given). ValueError if empty, as reduce."""
        return self.reduce(_Min(key))

    def take_ordered(self, n: int, key: Callable[[T], Any] | None = None) -> list[T]:
        """The n smallest records (by key), ascending, on the driver.

        Raises
        ------
        ConfigError
            n is not a whole number of at least 0.
        """
        require_count("n", n, minimum=0)
        parts = self.engine.run_job(self, _Smallest(n, key))
        return sorted(itertools.chain.from_iterable(parts), key=key)[:n]

    def top(self, n: int, key: Callable[[T], Any] | None = None) -> list[T]:
        """The n largest records (by key), descending, on the driver; n as in take_ordered."""
        require_count("n", n, minimum=0)
        parts = self.engine.run_job(self, _Largest(n, key))
        return sorted(itertools.chain.from_iterable(parts), key=key, reverse=True)[:n]

    def count_by_key(self: RDD[tuple[K, V]]) -> dict[K, int]:
        """{key: number of records with it} on the driver."""
        return dict(self.keys().count_by_value_rdd().collect())

    def lookup(self: RDD[tuple[K, V]], key: K) -> list[V]:
        """Every value of `key`, on the driver (a scan of every partition)."""
        return self.filter(_KeyEquals(key)).values().collect()

    def reduce_by_key_locally(self: RDD[tuple[K, V]], fn: Callable[[V, V], V]) -> dict[K, V]:
        """{key: its values folded by fn} on the driver, with no shuffle."""
        result: dict[Any, Any] = {}
        for part in self.engine.run_job(self, _ReduceLocally(fn)):
            for key, value in part.items():
                result[key] = fn(result[key], value) if key in result else value
        return result

    def stats(self) -> StatCounter:
        """Count, mean, variance, min and max of numeric records, in one job."""
        counter = StatCounter()
        for part in self.engine.run_job(self, _stats_partition):
            counter.merge(part)
        return counter

    def mean(self) -> float:
        """The mean of numeric records (nan when empty)."""
        return self.stats().mean

    def variance(self) -> float:
        """The population variance of numeric records (nan when empty)."""
        return self.stats().variance

    def stdev(self) -> float:
        """The population standard deviation of numeric records (nan when empty)."""
        return self.stats().stdev

    def sample_variance(self) -> float:
        """The sample variance (divided by count - 1) of numeric records."""
        return self.stats().sample_variance

    def sample_stdev(self) -> float:
        """The sample standard deviation (divided by count - 1) of numeric records."""
        return self.stats().sample_stdev

    def to_local_iterator(self) -> Iterator[T]:
        """Every record, on the driver, one partition (one job) at a time."""
        for split in range(self.num_partitions):
            (part,) = self.engine.run_job(self, _collect_partition, [split])
            yield from part

    def get_num_partitions(self) -> int:
        """The number of partitions."""
        return self.num_partitions


class StatCounter:
    """Running count, mean, variance (Welford's), min and max of numbers (Spark's StatCounter)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = math.nan
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        """Count one more number."""
        self.count += 1
        delta = value - (0.0 if self.count == 1 else self.mean)
        self.mean = value if self.count == 1 else self.mean + delta / self.count
        self._m2 += delta * (value - self.mean)
        self.min, self.max = min(self.min, value), max(self.max, value)

    def merge(self, other: StatCounter) -> None:
        """Count the numbers another counter saw too (Chan's parallel formula)."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self._m2 = other.count, other.mean, other._m2
            self.min, self.max = other.min, other.max
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self._m2 += other._m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    @property
    def sum(self) -> float:
        """The numbers' sum."""
        return 0.0 if self.count == 0 else self.mean * self.count

    @property
    def variance(self) -> float:
        """Population variance; nan when empty."""
        return self._m2 / self.count if self.count else math.nan

    @property
    def sample_variance(self) -> float:
        """Sample variance; nan with fewer than two numbers."""
        return self._m2 / (self.count - 1) if self.count > 1 else math.nan

    @property
    def stdev(self) -> float:
        """Population standard deviation."""
        return math.sqrt(self.variance)

    @property
    def sample_stdev(self) -> float:
        """Sample standard deviation."""
        return math.sqrt(self.sample_variance)

    def __repr__(self) -> str:
        return (
            f"(count: {self.count}, mean: {self.mean}, stdev: {self.stdev}, "
            f"max: {self.max}, min: {self.min})"
        )


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
            return dataclasses.replace(source, locations=locations), []
        if isinstance(source, ConcatSource):
            parts = tuple(
                dataclasses.replace(p, locations=self.engine.locate(p.block_id, p.locations))
                for p in source.parts
            )
            return ConcatSource(parts), []
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


def block_ranges(blocks: Sequence[tuple[BlockSource, int]], partitions: int) -> list[SourceSpec]:
    """The blocks' records, (block, its record count) in order, as at most `partitions` runs
    of near-equal length (BlockSource ranges, ConcatSource when a run spans blocks).

    A batch's blocks differ in size (records arrive unevenly), so a partition per block left
    one executor with the larger share; equal runs give each core one. A run reaching a
    block's end reads to its end, so a count lower than the block's records loses none.
    """
    total = sum(count for _, count in blocks)
    n = max(1, min(partitions, total))
    bounds = [total * i // n for i in range(n + 1)]
    runs: list[list[BlockSource]] = [[] for _ in range(n)]
    offset = 0
    for block, count in blocks:
        end = offset + count
        if count == 0:  # whole, in the run at its position
            runs[min(n - 1, bisect.bisect_right(bounds, offset) - 1)].append(block)
            continue
        for i in range(n):
            lo, hi = bounds[i], bounds[i + 1]
            if lo < end and hi > offset:
                start, stop = max(lo, offset) - offset, None if hi >= end else hi - offset
                runs[i].append(dataclasses.replace(block, start=start, stop=stop))
        offset = end
    return [run[0] if len(run) == 1 else ConcatSource(tuple(run)) for run in runs if run]


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
        self.failure: str | None = None

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

    def failed(self, error: str) -> None:
        """Computing it failed: by default nothing is kept, and a later job tries again."""

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
        self._base = base
        self.updater = updater
        self.family = family
        self.batch_time = batch_time

    @property
    def base(self) -> StateRDD | None:
        """The version this one updates: the newest earlier one whose batch did not fail.

        A version whose update failed (the user's function raised on a record) is skipped
        for good, so the state stays as the last good batch left it and later batches go
        on from there; executors roll back what the failed update committed (checkout).
        Resolved when used, since a batch is generated before the one before it ran.
        """
        base = self._base
        while base is not None and base.failure is not None:
            base = base._base
        return base

    def failed(self, error: str) -> None:
        """Its update failed: later versions skip it, and reading it fails at once."""
        self.failure = error

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
        self._base = None

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        if self.blocks is None:
            raise RuntimeError(f"state RDD {self.id} planned before it was materialised")
        block_id, locations = self.blocks[split]
        return StateSource(block_id, self.engine.locate(block_id, locations)), []

    def state_read(self, split: int) -> tuple[StateRDD, StateSource, list[PartitionFn]] | None:
        if self.blocks is not None or self.failure is not None:
            return None
        return self, StateSource(self.block_id(split), ()), []


class StateViewRDD(RDD):
    """Another view of a state version: the records its batch emitted (`mapped`), or per
    partition its changes since batch time `since` (`changes`; see tasks.StateSource)."""

    def __init__(self, state: StateRDD, view: str, since: int = 0) -> None:
        super().__init__(state.engine, state.num_partitions)
        self.state = state
        self.view = view
        self.since = since

    def narrow_parents(self) -> Sequence[RDD]:
        return (self.state,)

    def plan(self, split: int, locate: MapLocations) -> tuple[SourceSpec, list[PartitionFn]]:
        source, ops = self.state.plan(split, locate)
        assert isinstance(source, StateSource)
        return StateSource(source.block_id, source.locations, self.view, self.since), ops

    def state_read(self, split: int) -> tuple[StateRDD, StateSource, list[PartitionFn]] | None:
        found = self.state.state_read(split)
        if found is None:
            return None
        state, source, ops = found
        return state, StateSource(source.block_id, (), self.view, self.since), ops

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

    def state_read(self, split: int) -> tuple[StateRDD, StateSource, list[PartitionFn]] | None:
        found = self.parent.state_read(split)
        return None if found is None else (found[0], found[1], [*found[2], self.op])

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


def _with_none(value: Any) -> tuple[Any, None]:
    return value, None


def _first(a: Any, b: Any) -> Any:
    return a


def _only_left(sides: tuple[list[Any], ...]) -> list[Any]:
    left, right = sides
    return [] if right else left


def _in_both(record: tuple[Any, tuple[list[Any], ...]]) -> bool:
    left, right = record[1]
    return bool(left) and bool(right)


def _cartesian_pairs(record: tuple[Any, tuple[list[Any], ...]]) -> list[tuple[Any, Any]]:
    left, right = record[1]
    return [(a, b) for a in left for b in right]


@dataclass(frozen=True, slots=True)
class _Spread:
    """Key each record of partition p by every (p, j) (left side) or (i, p) (right side)."""

    others: int
    left: bool

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        for record in records:
            for other in range(self.others):
                yield ((index, other) if self.left else (other, index)), record


@dataclass(frozen=True, slots=True)
class _SampleKeys:
    key_fn: Callable[[Any], Any]
    size: int

    def __call__(self, index: int, records: Iterator[Any]) -> list[Any]:
        rng = random.Random(index)
        sample: list[Any] = []
        for seen, record in enumerate(records):
            if seen < self.size:
                sample.append(self.key_fn(record))
            elif (slot := rng.randrange(seen + 1)) < self.size:
                sample[slot] = self.key_fn(record)
        return sample


@dataclass(frozen=True, slots=True)
class _Bucket:
    """(partition by range of key, record): ints below num_partitions hash to themselves."""

    key_fn: Callable[[Any], Any]
    bounds: tuple[Any, ...]
    ascending: bool
    num_partitions: int

    def __call__(self, records: Iterator[Any]) -> Iterator[tuple[int, Any]]:
        for record in records:
            bucket = bisect.bisect_right(self.bounds, self.key_fn(record))
            yield (bucket if self.ascending else self.num_partitions - 1 - bucket), record


@dataclass(frozen=True, slots=True)
class _SortPartition:
    key_fn: Callable[[Any], Any]
    ascending: bool

    def __call__(self, records: Iterator[tuple[int, Any]]) -> list[Any]:
        values = [record for _, record in records]
        return sorted(values, key=self.key_fn, reverse=not self.ascending)


@dataclass(frozen=True, slots=True)
class _KeyOf:
    key_fn: Callable[[Any], Any]

    def __call__(self, pair: tuple[Any, Any]) -> Any:
        return self.key_fn(pair[0])


@dataclass(frozen=True, slots=True)
class _KeyEquals:
    key: Any

    def __call__(self, pair: tuple[Any, Any]) -> bool:
        return bool(pair[0] == self.key)


@dataclass(frozen=True, slots=True)
class _ZipWithIndex:
    offsets: tuple[int, ...]

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[tuple[Any, int]]:
        start = self.offsets[index] if index < len(self.offsets) else 0
        return ((record, start + i) for i, record in enumerate(records))


@dataclass(frozen=True, slots=True)
class _StartFrom:
    zero: Any
    seq_fn: Callable[[Any, Any], Any]

    def __call__(self, value: Any) -> Any:
        return self.seq_fn(copy.deepcopy(self.zero), value)


@dataclass(frozen=True, slots=True)
class _Aggregate:
    zero: Any
    seq_fn: Callable[[Any, Any], Any]

    def __call__(self, index: int, records: Iterator[Any]) -> Any:
        result = copy.deepcopy(self.zero)
        for record in records:
            result = self.seq_fn(result, record)
        return result


@dataclass(frozen=True, slots=True)
class _Max:
    key: Callable[[Any], Any] | None

    def __call__(self, a: Any, b: Any) -> Any:
        return max(a, b, key=self.key) if self.key else max(a, b)


@dataclass(frozen=True, slots=True)
class _Min:
    key: Callable[[Any], Any] | None

    def __call__(self, a: Any, b: Any) -> Any:
        return min(a, b, key=self.key) if self.key else min(a, b)


@dataclass(frozen=True, slots=True)
class _Smallest:
    n: int
    key: Callable[[Any], Any] | None

    def __call__(self, index: int, records: Iterator[Any]) -> list[Any]:
        return heapq.nsmallest(self.n, records, key=self.key)


@dataclass(frozen=True, slots=True)
class _Largest:
    n: int
    key: Callable[[Any], Any] | None

    def __call__(self, index: int, records: Iterator[Any]) -> list[Any]:
        return heapq.nlargest(self.n, records, key=self.key)


@dataclass(frozen=True, slots=True)
class _UniqueIds:
    num_partitions: int

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[tuple[Any, int]]:
        n = max(1, self.num_partitions)
        return ((record, i * n + index) for i, record in enumerate(records))


@dataclass(frozen=True, slots=True)
class _Sample:
    with_replacement: bool
    fraction: float
    seed: int

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[Any]:
        rng = random.Random(self.seed ^ (index * 0x9E3779B9))
        for record in records:
            if not self.with_replacement:
                if rng.random() < self.fraction:
                    yield record
                continue
            # Poisson(fraction) copies, by Knuth's method: fine for the small means used.
            limit, copies, product = math.exp(-self.fraction), 0, rng.random()
            while product > limit:
                copies += 1
                product *= rng.random()
            yield from itertools.repeat(record, copies)


@dataclass(frozen=True, slots=True)
class _SortPairs:
    key_fn: Callable[[Any], Any]
    ascending: bool

    def __call__(self, records: Iterator[Any]) -> list[Any]:
        return sorted(records, key=self.key_fn, reverse=not self.ascending)


@dataclass(frozen=True, slots=True)
class _ReduceLocally:
    fn: Callable[[Any, Any], Any]

    def __call__(self, index: int, records: Iterator[tuple[Any, Any]]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, value in records:
            out[key] = self.fn(out[key], value) if key in out else value
        return out


def _stats_partition(index: int, records: Iterator[Any]) -> StatCounter:
    counter = StatCounter()
    for value in records:
        counter.add(value)
    return counter
