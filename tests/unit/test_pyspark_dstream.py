"""PySpark's own DStream tests, ported: Spark's inputs and expected outputs, kubestream's names.

Source: Apache Spark, python/pyspark/streaming/tests/test_dstream.py (BasicOperationTests,
WindowFunctionTests) and the operator tests of test_context.py (StreamingContextTests),
Apache License 2.0. Each case keeps Spark's input batches, pipeline and expected output;
the harness is ours: Spark's `_test_func` queues each input batch as one batch of a queue
stream, runs as many batches as outputs are expected, and compares each batch's collected
output (sorted by key where Spark sorts). Here the batches run on a manual clock through
kubestream.testing.run_batches, with Spark's 0.5 s batch interval where windows depend on it.

Deliberate differences, each said at its case and in the README:
- A batch time is an int of milliseconds (foreach_rdd's `t`), not a datetime, so slice()
  takes those ints (or datetimes).
- Spark's getActive* tests stop the JVM context behind Python's back; kubestream has no
  second layer, so those steps are left out.
- get_or_create always calls its create function (the graph is rebuilt from code; the
  checkpoint holds positions and state, not pickled functions), so Spark's assertions that
  setup was not called become assertions that the state resumed, and a function that
  could not be pickled into a checkpoint is no error.
- Files are written before the batch that reads them, with the manual clock, where Spark
  sleeps a second between them.
"""

from __future__ import annotations

import operator
import os
import struct
import tempfile
from collections.abc import Callable, Sequence
from functools import reduce
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.engine import Engine
from kubestream.core.rdd import RDD
from kubestream.errors import JobFailedError
from kubestream.executor.in_process import InProcessExecutors
from kubestream.streaming.dstream import DStream
from kubestream.testing import run_batches

Batches = Sequence[Sequence[Any]]


def _sort_by_key(batches: list[list[Any]]) -> list[list[Any]]:
    """Spark's _sort_result_based_on_key: each batch's records sorted by their first item."""
    return [sorted(batch, key=lambda record: record[0]) for batch in batches]


def _test_func(
    input: Batches,
    func: Callable[..., DStream],
    expected: list[list[Any]],
    sort: bool = False,
    input2: Batches | None = None,
    *,
    partitions: int = 1,
    batch_interval: float = 0.5,
    num_batches: int | None = None,
) -> None:
    """Spark's PySparkStreamingTestCase._test_func on run_batches: one partition per batch
    (Spark's sc.parallelize(d, 1)) unless the case asks for more, len(expected) outputs."""
    inputs = [input] if input2 is None else [input, input2]
    result = run_batches(
        inputs,
        func,
        batch_interval=batch_interval,
        partitions=partitions,
        num_batches=num_batches or len(expected),
        skip_missing=True,
    )
    if sort:
        result, expected = _sort_by_key(result), _sort_by_key(expected)
    assert result == expected


# --- BasicOperationTests ---------------------------------------------------------------------
def test_map() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]
    _test_func(input, lambda d: d.map(str), [list(map(str, x)) for x in input])


def test_flat_map() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]
    expected = [list(chain.from_iterable(map(lambda y: [y, y * 2], x))) for x in input]
    _test_func(input, lambda d: d.flat_map(lambda x: (x, x * 2)), expected)


def test_filter() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]
    expected = [[y for y in x if y % 2 == 0] for x in input]
    _test_func(input, lambda d: d.filter(lambda x: x % 2 == 0), expected)


def test_count() -> None:
    input = [range(5), range(10), range(20)]
    _test_func(input, lambda d: d.count(), [[len(x)] for x in input])


def test_slice() -> None:
    """Spark's times are datetimes; kubestream's are int ms, so deltas are in ms here."""
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    ssc.remember(4.0)
    input = [[1], [2], [3], [4]]
    stream = ssc.queue_stream(input)
    time_vals: list[int] = []

    def get_times(t: int, rdd: RDD) -> None:
        if rdd and len(time_vals) < len(input):
            time_vals.append(t)

    stream.foreach_rdd(get_times)
    ssc.start()
    try:
        for _ in input:
            clock.advance(1.0)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
        begin_time = time_vals[0]

        def get_sliced(begin_delta: int, end_delta: int) -> list[int]:
            rdds = stream.slice(begin_time + begin_delta * 1000, begin_time + end_delta * 1000)
            return [r for rdd in rdds for r in rdd.collect()]

        assert set(get_sliced(0, 0)) == {1}
        assert set(get_sliced(1, 2)) == {2, 3}
        assert set(get_sliced(1, 4)) == {2, 3, 4}
        assert set(get_sliced(0, 4)) == {1, 2, 3, 4}
    finally:
        ssc.stop()


def test_reduce() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]
    expected = [[reduce(operator.add, x)] for x in input]
    _test_func(input, lambda d: d.reduce(operator.add), expected)


def test_reduce_by_key() -> None:
    input = [
        [("a", 1), ("a", 1), ("b", 1), ("b", 1)],
        [("", 1), ("", 1), ("", 1), ("", 1)],
        [(1, 1), (1, 1), (2, 1), (2, 1), (3, 1)],
    ]
    expected = [[("a", 2), ("b", 2)], [("", 4)], [(1, 2), (2, 2), (3, 1)]]
    _test_func(input, lambda d: d.reduce_by_key(operator.add), expected, sort=True)


def test_map_values() -> None:
    input = [
        [("a", 2), ("b", 2), ("c", 1), ("d", 1)],
        [(0, 4), (1, 1), (2, 2), (3, 3)],
        [(1, 1), (2, 1), (3, 1), (4, 1)],
    ]
    expected = [
        [("a", 12), ("b", 12), ("c", 11), ("d", 11)],
        [(0, 14), (1, 11), (2, 12), (3, 13)],
        [(1, 11), (2, 11), (3, 11), (4, 11)],
    ]
    _test_func(input, lambda d: d.map_values(lambda x: x + 10), expected, sort=True)


def test_flat_map_values() -> None:
    input = [
        [("a", 2), ("b", 2), ("c", 1), ("d", 1)],
        [(0, 4), (1, 1), (2, 1), (3, 1)],
        [(1, 1), (2, 1), (3, 1), (4, 1)],
    ]
    expected = [
        [("a", 2), ("a", 12), ("b", 2), ("b", 12), ("c", 1), ("c", 11), ("d", 1), ("d", 11)],
        [(0, 4), (0, 14), (1, 1), (1, 11), (2, 1), (2, 11), (3, 1), (3, 11)],
        [(1, 1), (1, 11), (2, 1), (2, 11), (3, 1), (3, 11), (4, 1), (4, 11)],
    ]
    _test_func(input, lambda d: d.flat_map_values(lambda x: (x, x + 10)), expected)


def test_glom() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]
    expected = [[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]]
    _test_func(input, lambda d: d.glom(), expected, partitions=2)


def test_map_partitions() -> None:
    input = [range(1, 5), range(5, 9), range(9, 13)]

    def f(iterator: Any) -> Any:
        yield sum(iterator)

    _test_func(input, lambda d: d.map_partitions(f), [[3, 7], [11, 15], [19, 23]], partitions=2)


def test_count_by_value() -> None:
    input = [list(range(1, 5)) * 2, list(range(5, 7)) + list(range(5, 9)), ["a", "a", "b", ""]]
    expected = [
        [(1, 2), (2, 2), (3, 2), (4, 2)],
        [(5, 2), (6, 2), (7, 1), (8, 1)],
        [("a", 2), ("b", 1), ("", 1)],
    ]
    _test_func(input, lambda d: d.count_by_value(), expected, sort=True)


def test_group_by_key() -> None:
    input = [
        [(1, 1), (2, 1), (3, 1), (4, 1)],
        [(1, 1), (1, 1), (1, 1), (2, 1), (2, 1), (3, 1)],
        [("a", 1), ("a", 1), ("b", 1), ("", 1), ("", 1), ("", 1)],
    ]
    expected = [
        [(1, [1]), (2, [1]), (3, [1]), (4, [1])],
        [(1, [1, 1, 1]), (2, [1, 1]), (3, [1])],
        [("a", [1, 1]), ("b", [1]), ("", [1, 1, 1])],
    ]
    _test_func(input, lambda d: d.group_by_key().map_values(list), expected, sort=True)


def test_combine_by_key() -> None:
    input = [
        [(1, 1), (2, 1), (3, 1), (4, 1)],
        [(1, 1), (1, 1), (1, 1), (2, 1), (2, 1), (3, 1)],
        [("a", 1), ("a", 1), ("b", 1), ("", 1), ("", 1), ("", 1)],
    ]

    def add(a: str, b: Any) -> str:
        return a + str(b)

    expected = [
        [(1, "1"), (2, "1"), (3, "1"), (4, "1")],
        [(1, "111"), (2, "11"), (3, "1")],
        [("a", "11"), ("b", "1"), ("", "111")],
    ]
    _test_func(input, lambda d: d.combine_by_key(str, add, add), expected, sort=True)


def test_repartition() -> None:
    input = [range(1, 5), range(5, 9)]
    expected = [[[1, 2, 3, 4]], [[5, 6, 7, 8]]]
    _test_func(input, lambda d: d.repartition(1).glom(), expected, partitions=2)


def test_union() -> None:
    input1 = [range(3), range(5), range(6)]
    input2 = [range(3, 6), range(5, 6)]
    expected = [list(range(6)), list(range(6)), list(range(6))]
    _test_func(input1, lambda d1, d2: d1.union(d2), expected, input2=input2)


def test_cogroup() -> None:
    input = [
        [(1, 1), (2, 1), (3, 1)],
        [(1, 1), (1, 1), (1, 1), (2, 1)],
        [("a", 1), ("a", 1), ("b", 1), ("", 1), ("", 1)],
    ]
    input2 = [[(1, 2)], [(4, 1)], [("a", 1), ("a", 1), ("b", 1), ("", 1), ("", 2)]]
    expected = [
        [(1, ([1], [2])), (2, ([1], [])), (3, ([1], []))],
        [(1, ([1, 1, 1], [])), (2, ([1], [])), (4, ([], [1]))],
        [("a", ([1, 1], [1, 1])), ("b", ([1], [1])), ("", ([1, 1], [1, 2]))],
    ]

    def func(d1: DStream, d2: DStream) -> DStream:
        return d1.cogroup(d2).map_values(lambda vs: tuple(map(list, vs)))

    _test_func(input, func, expected, sort=True, input2=input2)


def test_join() -> None:
    input, input2 = [[("a", 1), ("b", 2)]], [[("b", 3), ("c", 4)]]
    _test_func(input, lambda a, b: a.join(b), [[("b", (2, 3))]], True, input2)


def test_left_outer_join() -> None:
    input, input2 = [[("a", 1), ("b", 2)]], [[("b", 3), ("c", 4)]]
    expected = [[("a", (1, None)), ("b", (2, 3))]]
    _test_func(input, lambda a, b: a.left_outer_join(b), expected, True, input2)


def test_right_outer_join() -> None:
    input, input2 = [[("a", 1), ("b", 2)]], [[("b", 3), ("c", 4)]]
    expected = [[("b", (2, 3)), ("c", (None, 4))]]
    _test_func(input, lambda a, b: a.right_outer_join(b), expected, True, input2)


def test_full_outer_join() -> None:
    input, input2 = [[("a", 1), ("b", 2)]], [[("b", 3), ("c", 4)]]
    expected = [[("a", (1, None)), ("b", (2, 3)), ("c", (None, 4))]]
    _test_func(input, lambda a, b: a.full_outer_join(b), expected, True, input2)


def _updater(vs: list[int], s: list[int] | None) -> list[int]:
    if not s:
        s = []
    s.extend(vs)
    return s


def test_update_state_by_key() -> None:
    input = [[("k", i)] for i in range(5)]
    expected = [[("k", v)] for v in [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]]
    _test_func(input, lambda d: d.update_state_by_key(_updater), expected)


def test_update_state_by_key_initial_rdd() -> None:
    """Spark passes initialRDD=an RDD; kubestream's `initial` takes the (key, state) pairs."""
    input = [[("k", i)] for i in range(2, 5)]
    expected = [[("k", v)] for v in [[0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4]]]
    _test_func(input, lambda d: d.update_state_by_key(_updater, initial=[("k", [0, 1])]), expected)


def _failing_context() -> tuple[StreamingContext, ManualClock]:
    clock = ManualClock(1000.0)
    return StreamingContext(0.5, clock=clock), clock


def _run_until_failure(ssc: StreamingContext, clock: ManualClock, batches: int) -> str:
    """Advance through `batches` batches, then await_termination_or_timeout as Spark's case."""
    ssc.start()
    try:
        for _ in range(batches):
            clock.advance(0.5)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
        with pytest.raises(JobFailedError) as failure:
            ssc.await_termination_or_timeout(10)
        return str(failure.value)
    finally:
        ssc.stop()


def test_failed_func() -> None:
    ssc, clock = _failing_context()
    stream = ssc.queue_stream([[d] for d in range(4)])

    def failed_func(i: int) -> int:
        raise ValueError("This is a special error")

    stream.map(failed_func).pprint()
    assert "This is a special error" in _run_until_failure(ssc, clock, 1)


def test_failed_func2() -> None:
    """A transform function failing on the driver fails its batch (it used to vanish)."""
    ssc, clock = _failing_context()
    stream1 = ssc.queue_stream([[d] for d in range(4)])
    stream2 = ssc.queue_stream([[d] for d in range(4)])

    def failed_func(rdd1: RDD, rdd2: RDD) -> RDD:
        raise ValueError("This is a special error")

    stream1.transform_with(stream2, failed_func).pprint()
    assert "This is a special error" in _run_until_failure(ssc, clock, 1)
    assert all(b.failed for b in ssc.batches)


def test_failed_func_with_resetting_failure() -> None:
    ssc, clock = _failing_context()
    stream = ssc.queue_stream([[d] for d in range(4)])

    def failed_func(i: int) -> int:
        if i == 1:
            raise ValueError("This is a special error")
        return i

    result: list[list[int]] = []
    stream.map(failed_func).foreach_rdd(lambda rdd: result.append(rdd.collect()))
    assert "This is a special error" in _run_until_failure(ssc, clock, 4)
    assert result == [[0], [2], [3]]


# --- WindowFunctionTests ---------------------------------------------------------------------
def test_window() -> None:
    input = [range(1), range(2), range(3), range(4), range(5)]
    expected = [[1], [3], [6], [9], [12], [9], [5]]
    _test_func(input, lambda d: d.window(1.5, 0.5).count(), expected)


def test_count_by_window() -> None:
    input = [range(1), range(2), range(3), range(4), range(5)]
    expected = [[1], [3], [6], [9], [12], [9], [5]]
    _test_func(input, lambda d: d.count_by_window(1.5, 0.5), expected)


def test_count_by_window_large() -> None:
    input = [range(1), range(2), range(3), range(4), range(5), range(6)]
    expected = [[1], [3], [6], [10], [15], [20], [18], [15], [11], [6]]
    _test_func(input, lambda d: d.count_by_window(2.5, 0.5), expected)


def test_count_by_value_and_window() -> None:
    input = [range(1), range(2), range(3), range(4), range(5), range(6)]
    expected = [
        [(0, 1)],
        [(0, 2), (1, 1)],
        [(0, 3), (1, 2), (2, 1)],
        [(0, 4), (1, 3), (2, 2), (3, 1)],
        [(0, 5), (1, 4), (2, 3), (3, 2), (4, 1)],
        [(0, 5), (1, 5), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 4), (1, 4), (2, 4), (3, 3), (4, 2), (5, 1)],
        [(0, 3), (1, 3), (2, 3), (3, 3), (4, 2), (5, 1)],
        [(0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 1)],
        [(0, 1), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
    ]
    _test_func(input, lambda d: d.count_by_value_and_window(2.5, 0.5), expected, sort=True)


def test_group_by_key_and_window() -> None:
    input = [[("a", i)] for i in range(5)]
    expected = [
        [("a", [0])],
        [("a", [0, 1])],
        [("a", [0, 1, 2])],
        [("a", [1, 2, 3])],
        [("a", [2, 3, 4])],
        [("a", [3, 4])],
        [("a", [4])],
    ]
    _test_func(input, lambda d: d.group_by_key_and_window(1.5, 0.5).map_values(list), expected)


def test_reduce_by_invalid_window() -> None:
    ssc = StreamingContext(0.5, clock=ManualClock(1000.0))
    d1 = ssc.queue_stream([range(3), range(5), range(1), range(6)])
    with pytest.raises(ValueError):
        d1.reduce_by_key_and_window(None, None, 0.1, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        d1.reduce_by_key_and_window(None, None, 1, 0.1)  # type: ignore[arg-type]
    ssc.stop()


def test_reduce_by_key_and_window_with_none_inv_func() -> None:
    """Spark's _collect takes the first 6 outputs; with a 1 s slide over 0.5 s batches
    they come from 12 batches (the harness skips batches between slides, as Spark's)."""
    input = [range(1), range(2), range(3), range(4), range(5), range(6)]

    def func(dstream: DStream) -> DStream:
        return (
            dstream.map(lambda x: (x, 1))
            .reduce_by_key_and_window(operator.add, None, 5, 1)
            .filter(lambda kv: kv[1] > 0)
            .count()
        )

    _test_func(input, func, [[2], [4], [6], [6], [6], [6]], num_batches=12)


# --- CheckpointTests ------------------------------------------------------------------------
def test_transform_function_serializer_failure(tmp_path: Path) -> None:
    """Spark fails to pickle a foreachRDD function that holds the SparkContext into the
    checkpoint. kubestream checkpoints no functions, so the same function just runs."""
    inputd = tmp_path / "in"
    inputd.mkdir()
    clock = ManualClock(1000.0)
    ran: list[int] = []

    def setup() -> StreamingContext:
        ssc = StreamingContext(0.5, clock=clock)

        def process(t: int, rdd: RDD) -> None:
            ran.append(ssc.engine.parallelize(range(1, 10)).count())

        ssc.text_file_stream(str(inputd)).foreach_rdd(process)
        return ssc

    ssc = StreamingContext.get_or_create(str(tmp_path / "cp"), setup)
    ssc.start()
    try:
        clock.advance(0.5)
        assert not ssc.wait_for_batch(round(clock.now() * 1000), 30).failed
    finally:
        ssc.stop()
    assert ran == [9]


def test_get_or_create_and_get_active_or_create(tmp_path: Path) -> None:
    """Spark's case: a word count kept by update_state_by_key over a file stream, saved as
    text files, resumed from its checkpoint by get_or_create and get_active_or_create."""
    inputd, outputd, cpd = tmp_path / "in", tmp_path / "out", str(tmp_path / "cp")
    inputd.mkdir()
    clock = ManualClock(1000.0)

    def updater(vs: list[int], s: int | None) -> int:
        return sum(vs, s or 0)

    def setup() -> StreamingContext:
        ssc = StreamingContext(2, clock=clock)
        dstream = ssc.text_file_stream(str(inputd)).map(lambda x: (x, 1))
        wc = dstream.update_state_by_key(updater)
        wc.map(lambda x: f"{x[0]},{x[1]}").save_as_text_files(str(outputd / "test"))
        wc.checkpoint(2)
        return ssc

    def check_output(ssc: StreamingContext, n: int) -> None:
        with open(inputd / str(n), "w") as f:
            f.writelines([f"{i}\n" for i in range(10)])
        clock.advance(2)
        ssc.wait_for_batch(round(clock.now() * 1000), 30)
        newest = outputd / max(os.listdir(outputd))
        assert "_SUCCESS" in os.listdir(newest)
        lines = [
            line for part in sorted(newest.glob("part-*")) for line in part.read_text().split()
        ]
        d = [int(line.split(",")[1]) for line in lines]
        assert len(d) == 10 and set(d) == {n}

    ssc = StreamingContext.get_or_create(cpd, setup)
    ssc.start()
    check_output(ssc, 1)
    check_output(ssc, 2)
    ssc.stop(graceful=True)

    ssc = StreamingContext.get_or_create(cpd, setup)  # resumes the state: counts go on
    ssc.start()
    check_output(ssc, 3)
    ssc.stop(graceful=True)

    ssc = StreamingContext.get_active_or_create(cpd, setup)
    ssc.start()
    check_output(ssc, 4)
    assert StreamingContext.get_active_or_create(cpd, setup) is ssc
    ssc.stop(graceful=True)


# --- StreamingContextTests (operators and lifecycle) ---------------------------------------
def _context() -> tuple[StreamingContext, ManualClock]:
    clock = ManualClock(1000.0)
    return StreamingContext(0.1, clock=clock), clock


def _collect(ssc: StreamingContext, clock: ManualClock, stream: DStream, n: int) -> list[Any]:
    result: list[Any] = []
    stream.foreach_rdd(lambda rdd: result.append(rdd.collect()))
    ssc.start()
    try:
        for _ in range(n):
            clock.advance(0.1)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
    finally:
        ssc.stop()
    return result


def test_stop_only_streaming_context() -> None:
    engine = Engine()
    executors = InProcessExecutors(engine, 2)
    try:
        ssc = StreamingContext(0.1, clock=ManualClock(1000.0), engine=engine)
        ssc.queue_stream([range(1, x) for x in range(101)]).foreach_rdd(lambda rdd: None)
        ssc.start()
        ssc.stop(stop_engine=False)
        assert len(engine.parallelize(range(5), 5).glom().collect()) == 5
    finally:
        executors.stop()


def test_stop_multiple_times() -> None:
    ssc, _ = _context()
    ssc.queue_stream([range(1, x) for x in range(101)]).foreach_rdd(lambda rdd: None)
    ssc.start()
    ssc.stop()
    ssc.stop()


def test_queue_stream() -> None:
    ssc, clock = _context()
    input = [list(range(i + 1)) for i in range(3)]
    assert _collect(ssc, clock, ssc.queue_stream(input), 3) == input


def test_text_file_stream() -> None:
    directory = tempfile.mkdtemp()
    ssc, clock = _context()
    stream = ssc.text_file_stream(directory).map(int)
    result: list[Any] = []
    stream.foreach_rdd(lambda rdd: result.append(rdd.collect()))
    ssc.start()
    try:
        for name in ("a", "b"):
            with open(os.path.join(directory, name), "w") as f:
                f.writelines([f"{i}\n" for i in range(10)])
            clock.advance(0.1)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
    finally:
        ssc.stop()
    assert result == [list(range(10)), list(range(10))]


def test_binary_records_stream() -> None:
    """Spark writes files while its clock runs; here each file lands before its batch."""
    directory = tempfile.mkdtemp()
    ssc, clock = _context()
    stream = ssc.binary_records_stream(directory, 10).map(lambda v: struct.unpack("10b", v))
    result: list[Any] = []
    stream.foreach_rdd(lambda rdd: result.append(rdd.collect()))
    ssc.start()
    try:
        for name in ("a", "b"):
            with open(os.path.join(directory, name), "wb") as f:
                f.write(bytearray(range(10)))
            clock.advance(0.1)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
    finally:
        ssc.stop()
    assert [list(v[0]) for v in result] == [list(range(10)), list(range(10))]


def test_context_union() -> None:
    ssc, clock = _context()
    input = [list(range(i + 1)) for i in range(3)]
    stream = ssc.union(ssc.queue_stream(input), ssc.queue_stream(input))
    assert _collect(ssc, clock, stream, 3) == [i * 2 for i in input]


def test_context_transform() -> None:
    ssc, clock = _context()
    dstream1 = ssc.queue_stream([[1]])
    dstream2 = ssc.queue_stream([[2]])
    dstream3 = ssc.queue_stream([[3]])

    def func(rdds: list[RDD]) -> RDD:
        rdd1, rdd2, rdd3 = rdds
        return rdd2.union(rdd3).union(rdd1)

    stream = ssc.transform([dstream1, dstream2, dstream3], func)
    assert list(chain.from_iterable(_collect(ssc, clock, stream, 1)))[:3] == [2, 3, 1]


def test_transform_pairrdd() -> None:
    ssc, clock = _context()
    stream = ssc.queue_stream([[1], [2], [3]]).transform(lambda rdd: rdd.cartesian(rdd))
    assert list(chain.from_iterable(_collect(ssc, clock, stream, 3))) == [(1, 1), (2, 2), (3, 3)]


def test_get_active() -> None:
    """Spark's last step stops the JVM context behind Python's back: kubestream has none."""
    assert StreamingContext.get_active() is None
    ssc, _ = _context()
    ssc.queue_stream([[1]]).foreach_rdd(lambda rdd: rdd.count())
    ssc.start()
    assert StreamingContext.get_active() is ssc
    ssc.stop()
    assert StreamingContext.get_active() is None


def test_get_active_or_create() -> None:
    assert StreamingContext.get_active() is None
    created: list[StreamingContext] = []

    def setup() -> StreamingContext:
        ssc, _ = _context()
        ssc.queue_stream([[1]]).foreach_rdd(lambda rdd: rdd.count())
        created.append(ssc)
        return ssc

    ssc = StreamingContext.get_active_or_create(None, setup)
    assert len(created) == 1
    ssc.start()
    try:
        assert StreamingContext.get_active_or_create(None, setup) is ssc
        assert len(created) == 1
    finally:
        ssc.stop()
    again = StreamingContext.get_active_or_create(None, setup)
    assert len(created) == 2 and again is created[1]
    again.stop()


def test_await_termination_or_timeout() -> None:
    ssc, _ = _context()
    ssc.queue_stream([range(1, x) for x in range(101)]).foreach_rdd(lambda rdd: None)
    ssc.start()
    assert not ssc.await_termination_or_timeout(0.001)
    ssc.stop()
    assert ssc.await_termination_or_timeout(0.001)
