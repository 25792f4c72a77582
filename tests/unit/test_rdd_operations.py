"""RDD operations a transform function reaches for, each against a plain-Python reference.

Run on one in-process engine; records vary with hypothesis, and so does the partitioning,
since these operations' results must not depend on it (sort order, indexes, folds).
"""

from __future__ import annotations

import math
import operator
import statistics
from collections import Counter
from collections.abc import Iterator
from functools import reduce

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.core.engine import Engine
from kubestream.errors import ConfigError, JobFailedError
from kubestream.executor.in_process import InProcessExecutors

numbers = st.lists(st.integers(-30, 30), max_size=40)
pairs = st.lists(st.tuples(st.sampled_from("abcde"), st.integers(-9, 9)), max_size=30)
slices = st.integers(1, 4)
checked = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    engine = Engine()
    executors = InProcessExecutors(engine, 2)
    yield engine
    executors.stop()


@checked
@given(records=numbers, n=slices, out=st.none() | slices, ascending=st.booleans())
def test_sort_by(
    engine: Engine, records: list[int], n: int, out: int | None, ascending: bool
) -> None:
    source = engine.parallelize(records, n)
    rdd = source.sort_by(abs, ascending, out)
    assert rdd.collect() == sorted(records, key=abs, reverse=not ascending)
    assert rdd.num_partitions == (out or max(1, source.num_partitions))


@checked
@given(records=pairs, n=slices, ascending=st.booleans())
def test_sort_by_key(
    engine: Engine, records: list[tuple[str, int]], n: int, ascending: bool
) -> None:
    got = engine.parallelize(records, n).sort_by_key(ascending, 3).collect()
    assert [k for k, _ in got] == sorted((k for k, _ in records), reverse=not ascending)
    assert Counter(got) == Counter(records)


@checked
@given(records=numbers, n=slices)
def test_zip_with_index(engine: Engine, records: list[int], n: int) -> None:
    assert engine.parallelize(records, n).zip_with_index().collect() == [
        (r, i) for i, r in enumerate(records)
    ]


@checked
@given(records=numbers, n=slices)
def test_folds(engine: Engine, records: list[int], n: int) -> None:
    rdd = engine.parallelize(records, n)
    assert rdd.fold(0, operator.add) == sum(records)
    assert rdd.aggregate((0, 0), lambda acc, x: (acc[0] + x, acc[1] + 1), _pairwise_add) == (
        sum(records),
        len(records),
    )
    assert sorted(rdd.aggregate([], lambda acc, x: [*acc, x], operator.add)) == sorted(records)


def _pairwise_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


@checked
@given(records=pairs, n=slices)
def test_fold_by_key_and_count_by_key(
    engine: Engine, records: list[tuple[str, int]], n: int
) -> None:
    rdd = engine.parallelize(records, n)
    totals: dict[str, int] = {}
    for k, v in records:
        totals[k] = totals.get(k, 0) + v
    assert dict(rdd.fold_by_key(0, operator.add).collect()) == totals
    assert rdd.count_by_key() == dict(Counter(k for k, _ in records))
    for key in "ab":
        assert sorted(rdd.lookup(key)) == sorted(v for k, v in records if k == key)


hashables = st.lists(
    st.one_of(
        st.integers(-3, 3),
        st.booleans(),
        st.sampled_from([0.0, 1.0, 2.5]),
        st.text("ab", max_size=2),
        st.tuples(st.integers(0, 2), st.text("ab", max_size=1)),
    ),
    max_size=40,
)


@checked
@given(records=hashables, n=slices, out=st.none() | slices)
def test_count_by_value_counts_equal_records_together(
    engine: Engine, records: list[object], n: int, out: int | None
) -> None:
    """Equal records count as one, whatever their type (1, 1.0 and True), as in a dict."""
    rdd = engine.parallelize(records, n)
    assert rdd.count_by_value() == Counter(records)
    counted = rdd.count_by_value_rdd(out).collect()
    assert len(counted) == len(Counter(records))
    assert dict(counted) == Counter(records)


def test_count_by_value_of_unhashable_records_fails_naming_the_type(engine: Engine) -> None:
    with pytest.raises(JobFailedError, match="unhashable type: 'list'"):
        engine.parallelize([[1], [1]], 2).count_by_value()


@checked
@given(records=numbers, n=slices, k=st.integers(0, 8))
def test_extremes(engine: Engine, records: list[int], n: int, k: int) -> None:
    rdd = engine.parallelize(records, n)
    assert rdd.take_ordered(k, key=abs) == sorted(records, key=abs)[:k]
    assert rdd.top(k) == sorted(records, reverse=True)[:k]
    if records:
        assert rdd.max() == max(records) and rdd.min(key=abs) == min(records, key=abs)
        assert rdd.max() == reduce(max, records)
    else:
        with pytest.raises(ValueError):
            rdd.max()


@checked
@given(left=numbers, right=numbers, n=slices, m=slices)
def test_set_operations(engine: Engine, left: list[int], right: list[int], n: int, m: int) -> None:
    a, b = engine.parallelize(left, n), engine.parallelize(right, m)
    assert sorted(a.distinct().collect()) == sorted(set(left))
    assert Counter(a.subtract(b).collect()) == Counter(x for x in left if x not in set(right))
    assert sorted(a.intersection(b).collect()) == sorted(set(left) & set(right))
    assert Counter(a.cartesian(b).collect()) == Counter((x, y) for x in left for y in right)


def test_wrong_arguments_name_themselves(engine: Engine) -> None:
    rdd = engine.parallelize([1, 2, 3])
    with pytest.raises(ConfigError, match="num_partitions must be"):
        rdd.sort_by(abs, num_partitions=0)
    with pytest.raises(ValueError, match="n must be"):
        rdd.take_ordered(-1)


@checked
@given(records=numbers, n=slices)
def test_group_by_and_unique_ids(engine: Engine, records: list[int], n: int) -> None:
    rdd = engine.parallelize(records, n)
    groups: dict[int, list[int]] = {}
    for r in records:
        groups.setdefault(r % 3, []).append(r)
    assert {k: sorted(v) for k, v in rdd.group_by(lambda r: r % 3).collect()} == {
        k: sorted(v) for k, v in groups.items()
    }
    ids = rdd.zip_with_unique_id().collect()
    assert [r for r, _ in ids] == records
    assert len({i for _, i in ids}) == len(records)


@checked
@given(records=numbers, n=slices, seed=st.integers(0, 2**31))
def test_sample_is_a_repeatable_sub_multiset(
    engine: Engine, records: list[int], n: int, seed: int
) -> None:
    rdd = engine.parallelize(records, n)
    without = rdd.sample(False, 0.5, seed).collect()
    assert without == rdd.sample(False, 0.5, seed).collect()
    assert not Counter(without) - Counter(records)
    assert rdd.sample(False, 1.0, seed).collect() == records
    assert rdd.sample(True, 0.0, seed).collect() == []
    with pytest.raises(ConfigError, match="fraction"):
        rdd.sample(False, 1.5)


@checked
@given(records=pairs, n=slices, out=slices)
def test_repartition_and_sort_within_partitions(
    engine: Engine, records: list[tuple[str, int]], n: int, out: int
) -> None:
    rdd = engine.parallelize(records, n).repartition_and_sort_within_partitions(out)
    parts = rdd.glom().collect()
    assert all([k for k, _ in p] == sorted(k for k, _ in p) for p in parts)
    assert Counter(rdd.collect()) == Counter(records)
    assert rdd.reduce_by_key_locally(operator.add) == dict(
        engine.parallelize(records, n).reduce_by_key(operator.add).collect()
    )


@checked
@given(records=st.lists(st.integers(-1000, 1000), max_size=40), n=slices)
def test_stats(engine: Engine, records: list[int], n: int) -> None:
    rdd = engine.parallelize(records, n)
    stats = rdd.stats()
    assert stats.count == len(records)
    assert list(rdd.to_local_iterator()) == records
    if not records:
        assert math.isnan(rdd.mean())
        return
    mean = sum(records) / len(records)
    assert rdd.mean() == pytest.approx(mean)
    assert rdd.variance() == pytest.approx(statistics.pvariance(records), abs=1e-6)
    assert rdd.stdev() == pytest.approx(statistics.pstdev(records), abs=1e-6)
    assert (stats.min, stats.max) == (min(records), max(records))
    if len(records) > 1:
        assert rdd.sample_variance() == pytest.approx(statistics.variance(records), abs=1e-6)
        assert rdd.sample_stdev() == pytest.approx(statistics.stdev(records), abs=1e-6)
