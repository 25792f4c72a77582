"""Stateful streams: update_state_by_key and map_with_state (with timeouts).

A batch's state is the previous batch's state cogrouped with the batch's new
records, persisted on executors (two copies), so it survives an executor loss
and its lineage stays one batch long. State keeps its hash partitioning, so the
cogroup reads it in place on the executor holding it; only new records move.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic

from kubestream.core.ops import FlatMapOp
from kubestream.core.rdd import RDD, MapPartitionsRDD, PersistedRDD
from kubestream.core.typevars import K, M, S, V
from kubestream.errors import ConfigError, require, require_count
from kubestream.streaming.dstream import DStream, StatefulDStream

_MAPPED = 0
_STATE = 1


class StateDStream(StatefulDStream):
    """update_state_by_key: update_fn(new_values, old_state) -> new_state (None removes the key)."""

    def __init__(
        self,
        parent: DStream,
        update_fn: Callable[[list[Any], Any], Any],
        num_partitions: int | None,
        initial: Iterable[tuple[Any, Any]] | None,
    ) -> None:
        super().__init__(parent.env, [parent])
        self.update = functools.partial(_update_key, update_fn)
        self.num_partitions = num_partitions
        self.initial = list(initial) if initial is not None else []
        self.remember(2 * self.slide_ms)

    def compute(self, batch_time: int) -> RDD | None:
        new = self.parents[0].get_or_compute(batch_time)
        if new is None:
            new = self.env.engine.empty_rdd()
        previous = self._previous(batch_time)
        grouped = previous.cogroup(new, num_partitions=self.num_partitions)
        state = MapPartitionsRDD(grouped, FlatMapOp(self.update), grouped.partitioner)
        return PersistedRDD(state, f"state_{self.id}_{batch_time}_")

    def _previous(self, batch_time: int) -> RDD:
        previous_time = batch_time - self.slide_ms
        if previous_time > self.env.graph.zero_time:
            rdd = self.get_or_compute(previous_time)
            if rdd is not None:
                return rdd
        return self.env.engine.parallelize(self.initial)


def _update_key(
    update_fn: Callable[[list[Any], Any], Any],
    record: tuple[Any, tuple[list[Any], list[Any]]],
) -> list[tuple[Any, Any]]:
    key, (states, values) = record
    state = update_fn(values, states[0] if states else None)
    return [] if state is None else [(key, state)]


class State(Generic[S]):
    """The state of one key, handed to a map_with_state function (Spark's State).

    Read it with exists()/get(); change it with update() or remove(). What the
    function leaves in it is the key's state for the next batch.
    """

    def __init__(self, value: Any, exists: bool, timing_out: bool) -> None:
        self._value = value
        self._exists = exists
        self._timing_out = timing_out

    def exists(self) -> bool:
        """Whether the key has a state."""
        return self._exists

    def get(self) -> S:
        """The state.

        Raises
        ------
        KeyError
            The key has no state: check exists(), or use get_option().
        """
        if not self._exists:
            raise KeyError("state does not exist; check exists() first")
        return self._value  # type: ignore[no-any-return]

    def get_option(self, default: S | None = None) -> S | None:
        """The state, or `default` when the key has none."""
        return self._value if self._exists else default

    def update(self, value: S) -> None:
        """Make `value` the key's state.

        Raises
        ------
        ConfigError
            The state is timing out (is_timing_out()): it can only be read or removed.
        """
        if self._timing_out:
            raise ConfigError(
                "a state that is timing out cannot be updated; check is_timing_out() first"
            )
        self._value, self._exists = value, True

    def remove(self) -> None:
        """Remove the key's state after this batch."""
        self._value, self._exists = None, False

    def is_timing_out(self) -> bool:
        """Whether this call is the key's last: no value arrived within the spec's timeout.

        The function is then called once with value None, and the state is removed after.
        """
        return self._timing_out


@dataclass(frozen=True)
class StateSpec(Generic[K, V, S, M]):
    """What map_with_state runs (Spark's StateSpec); build it with StateSpec.of.

    Attributes
    ----------
    function : (K, V | None, State[S]) -> M
        Called on executors for every (key, value) record of a batch, and once
        with value None for a key timing out. It returns the mapped stream's
        record, and reads and changes the key's state through the State.
    timeout : float, optional
        Seconds without a value for a key after which it times out (checked at
        batch times, so within one batch interval after) and its state is removed;
        None keeps state until the function removes it.
    initial : tuple of (K, S)
        The state before the first batch.
    num_partitions : int, optional
        Partitions of the state; default: the engine's default parallelism.
    """

    function: Callable[[K, V | None, State[S]], M]
    timeout: float | None = None
    initial: tuple[tuple[K, S], ...] = ()
    num_partitions: int | None = None

    def __post_init__(self) -> None:
        """Check the arguments: ConfigError names the one that is wrong.

        Raises
        ------
        ConfigError
            function is not callable, timeout is not None nor a positive number of
            seconds, or num_partitions is not None nor a whole number of at least 1.
        """
        require(callable(self.function), "function", self.function, "callable")
        require(
            self.timeout is None
            or (
                isinstance(self.timeout, int | float)
                and not isinstance(self.timeout, bool)
                and self.timeout > 0
            ),
            "timeout",
            self.timeout,
            "None or a positive number of seconds",
        )
        require_count("num_partitions", self.num_partitions, optional=True)

    @staticmethod
    def of(
        function: Callable[[K, V | None, State[S]], M],
        timeout: float | None = None,
        initial: Iterable[tuple[K, S]] = (),
        num_partitions: int | None = None,
    ) -> StateSpec[K, V, S, M]:
        """A StateSpec; arguments as its attributes, and the same ConfigError."""
        return StateSpec(function, timeout, tuple(initial), num_partitions)


class MapWithStateDStream(DStream[M], Generic[K, S, M]):
    """Mapped records of each batch; state_snapshots() gives every key's state after the batch."""

    def __init__(self, parent: DStream, spec: StateSpec) -> None:
        super().__init__(parent.env, [parent])
        self.spec = spec
        self.combined = _CombinedStateDStream(parent, spec)
        self.parents = [self.combined]

    def compute(self, batch_time: int) -> RDD[M] | None:
        """What the function returned for the records of `batch_time` (ms)."""
        combined = self.combined.get_or_compute(batch_time)
        return None if combined is None else combined.flat_map(_mapped_records)

    def state_snapshots(self) -> DStream[tuple[K, S]]:
        """Every batch, (key, state) for every key that has a state after it."""
        return self.combined.map_partitions(_state_records)


class _CombinedStateDStream(StatefulDStream):
    """Tagged records: (MAPPED, value) and (STATE, (key, state, last_update_ms)), persisted."""

    def __init__(self, parent: DStream, spec: StateSpec) -> None:
        super().__init__(parent.env, [parent])
        self.spec = spec
        timeout_ms = None if spec.timeout is None else round(spec.timeout * 1000)
        self.step = functools.partial(_map_key, spec.function, timeout_ms)
        self.remember(2 * self.slide_ms)

    def checkpoint_records(self, batch_time: int) -> list[Any] | None:
        rdd = self.generated.get(batch_time)
        return None if rdd is None else rdd.filter(_is_state).collect()

    def compute(self, batch_time: int) -> RDD | None:
        new = self.parents[0].get_or_compute(batch_time)
        if new is None:
            new = self.env.engine.empty_rdd()
        previous_time = batch_time - self.slide_ms
        previous = (
            self.get_or_compute(previous_time) if previous_time > self.env.graph.zero_time else None
        )
        if previous is None:
            states = self.env.engine.parallelize(
                [(k, (v, batch_time)) for k, v in self.spec.initial]
            )
        else:
            states = MapPartitionsRDD(previous, FlatMapOp(_state_entries), previous.partitioner)
        step = functools.partial(self.step, batch_time)
        grouped = states.cogroup(new, num_partitions=self.spec.num_partitions)
        # Tagged records, not pairs; but every state entry sits in its key's partition.
        combined = MapPartitionsRDD(grouped, FlatMapOp(step), grouped.partitioner)
        return PersistedRDD(combined, f"mapstate_{self.id}_{batch_time}_")


def _map_key(
    function: Callable[[Any, Any, State], Any],
    timeout_ms: int | None,
    batch_time: int,
    record: tuple[Any, tuple[list[tuple[Any, int]], list[Any]]],
) -> list[tuple[int, Any]]:
    key, (states, values) = record
    value, updated_at = states[0] if states else (None, batch_time)
    out: list[tuple[int, Any]] = []
    if not values:
        if states and timeout_ms is not None and batch_time - updated_at >= timeout_ms:
            state = State(value, True, timing_out=True)
            out.append((_MAPPED, function(key, None, state)))
            return out
        if states:
            out.append((_STATE, (key, value, updated_at)))
        return out
    state = State(value, bool(states), timing_out=False)
    for item in values:
        out.append((_MAPPED, function(key, item, state)))
    if state.exists():
        out.append((_STATE, (key, state.get(), batch_time)))
    return out


def _is_state(record: tuple[int, Any]) -> bool:
    return record[0] == _STATE


def _mapped_records(record: tuple[int, Any]) -> list[Any]:
    return [record[1]] if record[0] == _MAPPED else []


def _state_entries(record: tuple[int, Any]) -> list[tuple[Any, tuple[Any, int]]]:
    if record[0] != _STATE:
        return []
    key, value, updated_at = record[1]
    return [(key, (value, updated_at))]


def _state_records(records: Iterable[tuple[int, Any]]) -> Iterable[tuple[Any, Any]]:
    return ((r[1][0], r[1][1]) for r in records if r[0] == _STATE)
