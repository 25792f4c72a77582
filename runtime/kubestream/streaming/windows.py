"""Windowed streams: window, reduce_by_key_and_window (incremental with an inverse), and friends.

Every batch's RDD of a windowed stream's parent is persisted, so a window reads
stored blocks instead of recomputing its sources; the incremental window also
persists its own result, keeping lineage one slide long, as Spark does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubestream.core.rdd import RDD, PersistedRDD, UnionRDD
from kubestream.errors import require
from kubestream.streaming.dstream import DStream, StatefulDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


def to_ms(seconds: float, name: str, slide_ms: int) -> int:
    """A user's window or slide in seconds as whole milliseconds: at least 1 ms, and a
    multiple of the parent stream's slide_ms; ConfigError naming the seconds given."""
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    require(number and seconds >= 0.001, name, seconds, "a number of seconds, at least 0.001")
    duration_ms = round(seconds * 1000)
    require(duration_ms % slide_ms == 0, name, seconds, _multiple_of(slide_ms))
    return duration_ms


def check_multiple(duration_ms: int, unit_ms: int, name: str) -> None:
    """ConfigError unless duration_ms is a multiple of the parent stream's slide, unit_ms."""
    require(duration_ms % unit_ms == 0, name, duration_ms / 1000, _multiple_of(unit_ms))


def _multiple_of(slide_ms: int) -> str:
    return f"a multiple of the parent stream's slide ({slide_ms / 1000:g} s)"


class PersistedDStream(DStream):
    """Each batch's RDD of the parent, stored on executors."""

    def __init__(self, parent: DStream) -> None:
        super().__init__(parent.env, [parent])

    def compute(self, batch_time: int) -> RDD | None:
        rdd = self.parents[0].get_or_compute(batch_time)
        if rdd is None:
            return None
        return PersistedRDD(rdd, f"persist_{self.id}_{batch_time}_")


class WindowedDStream(DStream):
    """window(): every slide, the union of the parent's RDDs of the last window_ms."""

    def __init__(self, parent: DStream, window_ms: int, slide_ms: int) -> None:
        check_multiple(window_ms, parent.slide_ms, "window")
        check_multiple(slide_ms, parent.slide_ms, "slide")
        stored = PersistedDStream(parent)
        super().__init__(parent.env, [stored])
        self.window_ms = window_ms
        self._slide_ms = slide_ms
        stored.remember(window_ms)

    @property
    def slide_ms(self) -> int:
        return self._slide_ms

    def describe(self) -> str:
        return f"window({self.window_ms}, {self._slide_ms})"

    def compute(self, batch_time: int) -> RDD | None:
        return union_of(self.parents[0], batch_time - self.window_ms, batch_time, self.env)


def union_of(stream: DStream, after: int, until: int, env: StreamingEnv) -> RDD:
    """The union of stream's RDDs for batch times in (after, until]."""
    step = stream.slide_ms
    first = after + step
    rdds = []
    for t in range(first, until + 1, step):
        if t > stream.env.graph.zero_time:
            rdd = stream.get_or_compute(t)
            if rdd is not None:
                rdds.append(rdd)
    return UnionRDD(env.engine, rdds) if rdds else env.engine.empty_rdd()


class ReducedWindowedDStream(StatefulDStream):
    """reduce_by_key_and_window with an inverse: previous window - what left + what arrived."""

    def __init__(
        self,
        parent: DStream,
        reduce_fn: Callable[[Any, Any], Any],
        inverse_fn: Callable[[Any, Any], Any],
        window_ms: int,
        slide_ms: int,
        num_partitions: int | None,
        filter_fn: Callable[[tuple[Any, Any]], bool] | None,
    ) -> None:
        check_multiple(window_ms, parent.slide_ms, "window")
        check_multiple(slide_ms, parent.slide_ms, "slide")
        reduced = PersistedDStream(parent.reduce_by_key(reduce_fn, num_partitions))
        super().__init__(parent.env, [reduced])
        reduced.remember(window_ms + slide_ms)
        self.remember(2 * slide_ms)
        self.window_ms = window_ms
        self._slide_ms = slide_ms
        self.num_partitions = num_partitions
        self.merge = functools.partial(_merge_window, reduce_fn, inverse_fn)
        self.reduce_fn = reduce_fn
        self.filter_fn = filter_fn

    @property
    def slide_ms(self) -> int:
        return self._slide_ms

    def describe(self) -> str:
        return f"reduce_by_key_and_window({self.window_ms}, {self._slide_ms})"

    def compute(self, batch_time: int) -> RDD | None:
        reduced = self.parents[0]
        previous_time = batch_time - self._slide_ms
        previous = (
            self.get_or_compute(previous_time) if previous_time > self.env.graph.zero_time else None
        )
        if previous is None:
            window = union_of(reduced, batch_time - self.window_ms, batch_time, self.env)
            result = window.reduce_by_key(self.reduce_fn, self.num_partitions)
        else:
            old = union_of(
                reduced, previous_time - self.window_ms, batch_time - self.window_ms, self.env
            )
            new = union_of(reduced, previous_time, batch_time, self.env)
            result = previous.cogroup(old, new, num_partitions=self.num_partitions).flat_map(
                self.merge
            )
        if self.filter_fn is not None:
            result = result.filter(self.filter_fn)
        return PersistedRDD(result, f"window_{self.id}_{batch_time}_")


def _merge_window(
    reduce_fn: Callable[[Any, Any], Any],
    inverse_fn: Callable[[Any, Any], Any],
    record: tuple[Any, tuple[list[Any], list[Any], list[Any]]],
) -> list[tuple[Any, Any]]:
    key, (previous, old, new) = record
    if not previous:
        if not new:
            return []
        return [(key, functools.reduce(reduce_fn, new))]
    value = previous[0]
    if old:
        value = inverse_fn(value, functools.reduce(reduce_fn, old))
    if new:
        value = reduce_fn(value, functools.reduce(reduce_fn, new))
    return [(key, value)]
