"""Stateful streams: update_state_by_key and map_with_state (with timeouts).

A batch's state is a StateRDD: each partition lives as a dict on an executor
(and a replica) and is updated in place by the batch's new records, which alone
are shuffled to it. Only what changed is copied to the replica. update_state_by_key
offers every key to its function every batch (Spark's semantics); map_with_state
touches only keys with records or whose timeout expires, as Spark's does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic

from kubestream.core.rdd import RDD, StateRDD, StateViewRDD
from kubestream.core.typevars import K, M, S, V
from kubestream.errors import ConfigError, require, require_count
from kubestream.storage.state_store import PartitionState, StateDelta, build_time_index
from kubestream.streaming.dstream import DStream, StatefulDStream

# States of these types are compared by value to tell unchanged keys, which are not
# copied to the replica; any other state is copied whenever its key is offered.
_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})


class _StateStream(StatefulDStream):
    """A stream of StateRDDs, each built on the previous batch's version."""

    updater: Callable[[PartitionState, Iterator[Any], int], StateDelta]
    num_partitions: int | None

    def family(self) -> str:
        return f"state_{self.id}"

    def version(self, batch_time: int, base: StateRDD | None, records: RDD) -> StateRDD:
        n = self.num_partitions or self.env.engine.default_parallelism
        return StateRDD(records, base, self.updater, self.family(), batch_time, n)

    def previous(self, batch_time: int) -> StateRDD | None:
        previous_time = batch_time - self.slide_ms
        if previous_time > self.env.graph.zero_time:
            rdd = self.get_or_compute(previous_time)
            if isinstance(rdd, StateRDD):
                return rdd
        return None

    def seed(self, batch_time: int, entries: list[tuple[Any, Any]]) -> StateRDD | None:
        """A first version holding entries (initial state, or a checkpoint's)."""
        if not entries:
            return None
        n = self.num_partitions or self.env.engine.default_parallelism
        records = self.env.engine.parallelize(entries)
        return StateRDD(records, None, load_entries, self.family(), batch_time, n)

    def restore_records(self, batch_time: int, records: list[Any]) -> None:
        seeded = self.seed(batch_time, records)
        self.generated[batch_time] = seeded or self.env.engine.parallelize([])

    def checkpoint_changes(
        self, batch_time: int, since: int
    ) -> tuple[dict[Any, Any], list[Any]] | None:
        """What the executors holding the state tell changed since `since` (StateStore.changes);
        None when one of them cannot tell (it holds a copy made since)."""
        rdd = self.generated.get(batch_time)
        if not isinstance(rdd, StateRDD):
            return None
        updated: dict[Any, Any] = {}
        removed: list[Any] = []
        for found in StateViewRDD(rdd, "changes", since).collect():
            if found is None:
                return None
            updated.update(found[0])
            removed += found[1]
        return updated, removed

    def compute(self, batch_time: int) -> RDD | None:
        new = self.parents[0].get_or_compute(batch_time)
        if new is None:
            new = self.env.engine.empty_rdd()
        base = self.previous(batch_time)
        if base is None and batch_time - self.slide_ms <= self.env.graph.zero_time:
            base = self.seed(batch_time - self.slide_ms, self.initial_entries(batch_time))
        return self.version(batch_time, base, new)

    def initial_entries(self, batch_time: int) -> list[tuple[Any, Any]]:
        return []


def load_entries(
    part: PartitionState, records: Iterator[tuple[Any, Any]], batch_time: int
) -> StateDelta:
    """A first version whose entries are the records (initial state, a checkpoint's)."""
    return StateDelta(dict(records), [])


class StateDStream(_StateStream):
    """update_state_by_key: update_fn(new_values, old_state) -> new_state (None removes the key)."""

    def __init__(
        self,
        parent: DStream,
        update_fn: Callable[[list[Any], Any], Any],
        num_partitions: int | None,
        initial: Iterable[tuple[Any, Any]] | None,
    ) -> None:
        super().__init__(parent.env, [parent])
        self.updater = functools.partial(_update_every_key, update_fn)
        self.num_partitions = num_partitions
        self.initial = list(initial) if initial is not None else []
        self.remember(2 * self.slide_ms)

    def initial_entries(self, batch_time: int) -> list[tuple[Any, Any]]:
        return self.initial


def _update_every_key(
    update_fn: Callable[[list[Any], Any], Any],
    part: PartitionState,
    records: Iterator[tuple[Any, Any]],
    batch_time: int,
) -> StateDelta:
    """Every key's new state, held or new; the delta keeps only keys whose state changed.
    The old state is kept to undo a retried batch, so update_fn should return a new
    value rather than modify the old one in place."""
    grouped: dict[Any, list[Any]] = {}
    for key, value in records:
        values = grouped.get(key)
        if values is None:
            grouped[key] = [value]
        else:
            values.append(value)
    updated: dict[Any, Any] = {}
    removed: list[Any] = []
    for key, old in part.data.items():
        values = grouped.pop(key, None)
        state = update_fn([] if values is None else values, old)
        if state is None:
            removed.append(key)
        elif not _unchanged(state, old):
            updated[key] = state
    for key, values in grouped.items():
        state = update_fn(values, None)
        if state is not None:
            updated[key] = state
    return StateDelta(updated, removed)


def _unchanged(new: Any, old: Any) -> bool:
    """Whether new is the same value as old, for states known not to change in place."""
    kind = type(new)
    if kind is not type(old):
        return False
    if kind is tuple:
        if not all(type(item) in _SCALARS for item in new):
            return False
    elif kind not in _SCALARS:
        return False
    return bool(new is old or new == old)


class State(Generic[S]):
    """The state of one key, handed to a map_with_state function (Spark's State).

    Read it with exists()/get(); change it with update() or remove(). What the
    function leaves in it is the key's state for the next batch.
    """

    __slots__ = ("_exists", "_timing_out", "_value")

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
        if not isinstance(combined, StateRDD):
            return self.env.engine.empty_rdd()
        return StateViewRDD(combined, "mapped")

    def state_snapshots(self) -> DStream[tuple[K, S]]:
        """Every batch, (key, state) for every key that has a state after it."""
        return self.combined.map_partitions(_state_records)


class _CombinedStateDStream(_StateStream):
    """map_with_state's state: entries key -> (state, last update time ms), with the
    records each batch's function calls returned."""

    def __init__(self, parent: DStream, spec: StateSpec) -> None:
        super().__init__(parent.env, [parent])
        self.spec = spec
        timeout_ms = None if spec.timeout is None else round(spec.timeout * 1000)
        self.updater = functools.partial(_map_keys, spec.function, timeout_ms)
        self.num_partitions = spec.num_partitions
        self.remember(2 * self.slide_ms)

    def initial_entries(self, batch_time: int) -> list[tuple[Any, Any]]:
        return [(k, (v, batch_time)) for k, v in self.spec.initial]


def _map_keys(
    function: Callable[[Any, Any, State], Any],
    timeout_ms: int | None,
    part: PartitionState,
    records: Iterator[tuple[Any, Any]],
    batch_time: int,
) -> StateDelta:
    """Calls the function for each record, then for each idle key whose timeout expired."""
    data = part.data
    held = data.get
    updated: dict[Any, Any] = {}
    removed: list[Any] = []
    mapped: list[Any] = []
    emit = mapped.append
    states: dict[Any, State] = {}
    known = states.get
    for key, value in records:  # map_with_state's hottest loop: bound lookups, no State methods
        state = known(key)
        if state is None:
            entry = held(key)
            if entry is None:
                state = states[key] = State(None, False, False)
            else:
                state = states[key] = State(entry[0], True, False)
        emit(function(key, value, state))
    for key, state in states.items():
        if state._exists:
            updated[key] = (state._value, batch_time)
        elif key in data:
            removed.append(key)
    if timeout_ms is not None:
        if part.by_time is None:
            part.by_time = build_time_index(data)
        for updated_at in sorted(part.by_time):
            if batch_time - updated_at < timeout_ms:
                break
            for key in part.by_time[updated_at]:
                if key not in states:
                    state = State(data[key][0], True, timing_out=True)
                    mapped.append(function(key, None, state))
                    removed.append(key)
    return StateDelta(updated, removed, mapped)


def _state_records(records: Iterable[tuple[Any, Any]]) -> Iterable[tuple[Any, Any]]:
    return ((key, entry[0]) for key, entry in records)
