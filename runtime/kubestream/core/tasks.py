"""What a task is, as data, and the interpreter executors run it with.

A task reads one partition from a source, applies a chain of partition
operators (by function hash), and either writes hash-partitioned shuffle blocks
or returns a value to the driver. Union and cogroup never need more than a chain:
a union partition is one parent's partition, and cogroup is a shuffle read.
"""

from __future__ import annotations

import functools
import itertools
import pickle
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from kubestream.core.functions import FunctionCache, FunctionRef
from kubestream.core.input_files import InputEvent, read_fixed_length_file, read_text_file
from kubestream.core.ops import Aggregator, HashPartitioner
from kubestream.errors import USER_CODE_ERRORS, BlockLostError, FetchFailedError
from kubestream.storage.block_manager import BlockManager, deserialise, serialise, shuffle_block_id
from kubestream.storage.checkpoint_store import read_verified
from kubestream.storage.state_store import (
    PartitionKey,
    PartitionState,
    StateDelta,
    StateStore,
    changes_id,
    delta_message,
)

_R = TypeVar("_R")
"""What a call run in the background returns."""


@dataclass(frozen=True, slots=True)
class ExecutorAddress:
    executor_id: str
    address: str


@dataclass(frozen=True, slots=True)
class EmptySource:
    pass


@dataclass(frozen=True, slots=True)
class ParallelSource:
    records: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class RangeSource:
    start: int
    stop: int


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file's text records (str; encoding and decode policy as input_files.read_text_file),
    or with `record_length` its fixed-length records (bytes); with `start`/`stop`, those of
    one split of it (input_files: bytes [start, stop), stop None to the end)."""

    path: str
    encoding: str = "utf-8"
    on_decode_error: str = "replace"
    record_length: int | None = None
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True, slots=True)
class BlockSource:
    """A stored block's records [start, stop) (stop None: to the end)."""

    block_id: str
    locations: tuple[ExecutorAddress, ...]
    wal_path: str | None = None
    start: int = 0
    stop: int | None = None


@dataclass(frozen=True, slots=True)
class ConcatSource:
    """The records of each part in turn: a partition made of runs of several blocks."""

    parts: tuple[BlockSource, ...]


@dataclass(frozen=True, slots=True)
class StateSource:
    """A version of a state partition (storage.state_store): its (key, state) `entries`,
    the `mapped` records the version's batch emitted (map_with_state), or (view
    "changes") one record, StateStore.changes against the version at batch time `since`
    (None when no executor holding the version can tell)."""

    block_id: str
    locations: tuple[ExecutorAddress, ...]
    view: str = "entries"
    since: int = 0


@dataclass(frozen=True, slots=True)
class ShuffleSource:
    shuffle_id: int
    reduce_index: int
    maps: tuple[ExecutorAddress, ...]
    aggregator: FunctionRef | None


@dataclass(frozen=True, slots=True)
class CoGroupPart:
    """One side of a cogroup: a shuffle read, or (co-partitioned, narrow) a block or a
    shuffled RDD's own partition, with the operators that side applies first."""

    source: ShuffleSource | BlockSource | StateSource
    ops: tuple[FunctionRef, ...] = ()


@dataclass(frozen=True, slots=True)
class CoGroupSource:
    parts: tuple[CoGroupPart, ...]


class RecordReader(Protocol):
    """Reads one partition from an external system on an executor (a Kafka offset range).
    Pickled into each task, so it must be a small object of an importable module.
    `report` takes what the driver should count (records skipped), sent with the result."""

    def read(self, env: TaskEnv, report: Callable[[InputEvent], None]) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class ReaderSource:
    reader: RecordReader


SourceSpec = (
    (EmptySource | ParallelSource | RangeSource | FileSource | BlockSource | ShuffleSource)
    | ConcatSource
    | CoGroupSource
    | StateSource
    | ReaderSource
)


@dataclass(frozen=True, slots=True)
class ShuffleWrite:
    shuffle_id: int
    map_index: int
    num_partitions: int
    partitioner: FunctionRef | None
    aggregator: FunctionRef | None


@dataclass(frozen=True, slots=True)
class ResultOutput:
    fn: FunctionRef


@dataclass(frozen=True, slots=True)
class StoreBlock:
    """Keep the partition as a block here and on one peer: persisted state and windows."""

    block_id: str
    peers: tuple[ExecutorAddress, ...]


@dataclass(frozen=True, slots=True)
class ReadBack:
    """A result task's work on the state version an UpdateState just made, done in the same
    task (as Spark computes a StateRDD inside the job that reads it): the `view` (see
    StateSource) through `ops`, then `fn`. It saves a stage a batch."""

    view: str
    since: int
    ops: tuple[FunctionRef, ...]
    fn: FunctionRef


@dataclass(frozen=True, slots=True)
class UpdatedAndRead:
    """What an UpdateState with a ReadBack returns: the replica's executor id, and the read's
    value or its failure (a traceback), which leaves the update standing. The executor
    pickles the value itself, so a value that cannot be pickled fails the read, not the
    update; the driver unpickles it as the task's result arrives (Engine.handle), while
    other tasks of the stage still run, as it does any task's result."""

    replica: str | None
    value: Any = b""
    error: str | None = None

    def unpickled(self) -> UpdatedAndRead:
        """The driver's copy, value unpickled; a value that cannot be unpickled there (a
        class the driver cannot import) fails the read, to be run again as a result stage."""
        if self.error is not None:
            return self
        try:
            return UpdatedAndRead(self.replica, pickle.loads(self.value))
        except USER_CODE_ERRORS:
            return UpdatedAndRead(self.replica, error=traceback.format_exc())


@dataclass(frozen=True, slots=True)
class UpdateState:
    """Apply the partition's (key, value) records to version `base` of a state partition
    (None: an empty one), keep the result as version `block_id` here, and send its changes
    to one peer; then run `then` on it, if given. `updater(partition, records, batch_time)
    -> StateDelta` must not modify the partition: a failure leaves the base intact."""

    family: str
    block_id: str
    base: StateSource | None
    updater: FunctionRef
    batch_time: int
    peers: tuple[ExecutorAddress, ...]
    then: ReadBack | None = None


OutputSpec = ShuffleWrite | ResultOutput | StoreBlock | UpdateState


@dataclass(frozen=True, slots=True)
class TaskDescription:
    task_id: int
    stage_id: int
    partition: int
    source: SourceSpec
    ops: tuple[FunctionRef, ...]
    output: OutputSpec

    def function_refs(self) -> list[FunctionRef]:
        refs = list(self.ops)
        if isinstance(self.output, ResultOutput):
            refs.append(self.output.fn)
        elif isinstance(self.output, UpdateState):
            refs.append(self.output.updater)
            if self.output.then is not None:
                refs += [*self.output.then.ops, self.output.then.fn]
        elif isinstance(self.output, ShuffleWrite):
            refs += [r for r in (self.output.partitioner, self.output.aggregator) if r]
        sources: list[SourceSpec] = [self.source]
        if isinstance(self.source, CoGroupSource):
            sources = [part.source for part in self.source.parts]
            refs += [ref for part in self.source.parts for ref in part.ops]
        refs += [s.aggregator for s in sources if isinstance(s, ShuffleSource) and s.aggregator]
        return refs


class TaskEnv(Protocol):
    """What a running task may touch on its executor."""

    executor_id: str
    blocks: BlockManager
    states: StateStore
    functions: FunctionCache

    def fetch_blocks(self, location: ExecutorAddress, block_ids: list[str]) -> list[bytes | None]:
        """Blocks from a peer; raises ConnectionError when the peer cannot answer."""
        ...

    def put_block(self, location: ExecutorAddress, block_id: str, blob: bytes) -> bool:
        """Store a copy of a block on a peer; False when a state delta's base is not there;
        raises ConnectionError when the peer cannot answer."""
        ...

    def in_background(self, fn: Callable[[], _R]) -> Future[_R]:
        """fn run on another of the executor's threads while the task goes on."""
        ...


def run_task(task: TaskDescription, env: TaskEnv, events: list[InputEvent] | None = None) -> Any:
    """Run one task; returns the result value, or None for a shuffle-map task.

    What the task met in its input (a file gone, undecodable records) is appended to
    `events`, for the executor to send the driver with the task's result.
    """
    records: Iterator[Any] = _open_source(task.source, task.partition, env, events)
    for ref in task.ops:
        records = iter(env.functions.get(ref)(task.partition, records))
    output = task.output
    if isinstance(output, ResultOutput):
        return env.functions.get(output.fn)(task.partition, records)
    if isinstance(output, StoreBlock):
        return _store_block(output, records, env)
    if isinstance(output, UpdateState):
        return _update_state(output, task.partition, records, env)
    _write_shuffle(output, records, env)
    return None


def _store_block(output: StoreBlock, records: Iterator[Any], env: TaskEnv) -> str | None:
    """Store locally and on the first reachable peer; returns that peer's executor id."""
    blob = serialise(list(records))
    env.blocks.put(output.block_id, blob)
    for peer in output.peers:
        if peer.executor_id == env.executor_id:
            continue
        try:
            env.put_block(peer, output.block_id, blob)
        except ConnectionError:
            continue
        return peer.executor_id
    return None


def _update_state(
    output: UpdateState, partition: int, records: Iterator[Any], env: TaskEnv
) -> str | UpdatedAndRead | None:
    """Update one state partition in place; returns the executor id of its replica, with
    the read's outcome when the output has one. The replica is sent the change while the
    task reads the state back: a put waits for the peer's answer, and the peer is most
    often running its own partition's update (on the stateful benchmark at 100 ms
    batches, 2-4 ms and up to 11 ms). With nothing to read, the task puts it itself."""
    replicate = _update(output, partition, records, env)
    then = output.then
    if then is None:
        return replicate()
    replicated = env.in_background(replicate)
    blob, error = b"", None
    try:
        read = _read_state(StateSource(output.block_id, (), then.view, then.since), env)
        for ref in then.ops:
            read = iter(env.functions.get(ref)(partition, read))
        value = env.functions.get(then.fn)(partition, read)
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except USER_CODE_ERRORS:
        error = traceback.format_exc()
    return UpdatedAndRead(replicated.result(), blob, error)


def _update(
    output: UpdateState, partition: int, records: Iterator[Any], env: TaskEnv
) -> Callable[[], str | None]:
    """Apply the batch to the partition; returns what copies the change to a replica
    (giving the replica's executor id, None when no peer took it)."""
    key = (output.family, partition)
    updater = env.functions.get(output.updater)
    base = output.base
    if base is None:
        delta: StateDelta = updater(PartitionState(key, "", {}), records, output.batch_time)
        env.states.install(key, output.block_id, delta.updated, delta.mapped)
        message = None
    else:
        part = env.states.checkout(key, base.block_id) or _fetch_state(key, base, env)
        delta = updater(part, records, output.batch_time)
        env.states.commit(part, output.block_id, delta)
        message = delta_message(key, base.block_id, output.block_id, delta)
    return functools.partial(_replicate, output, message, env)


def _replicate(output: UpdateState, message: bytes | None, env: TaskEnv) -> str | None:
    """Copy a version to the first peer that takes it: its delta, or the whole partition
    when there is no delta or the peer lacks the delta's base."""
    for peer in output.peers:
        if peer.executor_id == env.executor_id:
            continue
        try:
            if message is not None and env.put_block(peer, output.block_id, message):
                return peer.executor_id
            full = env.states.snapshot(output.block_id)
            if full is not None and env.put_block(peer, output.block_id, full):
                return peer.executor_id
        except ConnectionError:
            continue
    return None


def _peer_copies(
    locations: Iterable[ExecutorAddress], block_id: str, env: TaskEnv
) -> Iterator[bytes]:
    """`block_id` from each other executor in `locations` that answers and holds it, asked
    one at a time as the caller takes them."""
    for location in locations:
        if location.executor_id == env.executor_id:
            continue
        try:
            (blob,) = env.fetch_blocks(location, [block_id])
        except ConnectionError:
            continue
        if blob is not None:
            yield blob


def _fetch_state(key: PartitionKey, base: StateSource, env: TaskEnv) -> PartitionState:
    """Copy a state version from an executor holding it (this one holds none)."""
    for blob in _peer_copies(base.locations, base.block_id, env):
        if env.states.receive(blob):
            part = env.states.checkout(key, base.block_id)
            if part is not None:
                return part
    raise BlockLostError(f"state {base.block_id} is held by no live executor")


def _state_changes(source: StateSource, env: TaskEnv) -> Any:
    """StateStore.changes from this executor, else from one holding the version (a task
    placed away from the state asks it there); None when none can tell."""
    found = env.states.changes(source.block_id, source.since)
    if found is None:
        asked = changes_id(source.block_id, source.since)
        blob = next(_peer_copies(source.locations, asked, env), None)
        found = None if blob is None else pickle.loads(blob)
    return found


def _read_state(source: StateSource, env: TaskEnv) -> Iterator[Any]:
    if source.view == "changes":
        return iter([_state_changes(source, env)])
    found = env.states.read(source.block_id, entries=source.view != "mapped")
    if found is None:
        blob = next(_peer_copies(source.locations, source.block_id, env), None)
        if blob is not None:
            _, _, _, data, mapped = pickle.loads(blob)
            found = list(data.items()), mapped
    if found is None:
        raise BlockLostError(f"state {source.block_id} is held by no live executor")
    entries, mapped = found
    if source.view == "mapped":
        return iter(mapped or ())
    return iter(entries)


def _open_source(
    source: SourceSpec, partition: int, env: TaskEnv, events: list[InputEvent] | None = None
) -> Iterator[Any]:
    if isinstance(source, ParallelSource):
        return iter(source.records)
    if isinstance(source, RangeSource):
        return iter(range(source.start, source.stop))
    if isinstance(source, FileSource):
        report = events.append if events is not None else None
        if source.record_length is not None:
            return read_fixed_length_file(
                source.path, source.record_length, report, source.start, source.stop
            )
        return read_text_file(
            source.path, source.encoding, source.on_decode_error, report, source.start, source.stop
        )
    if isinstance(source, BlockSource):
        records = deserialise(_read_input_block(source, env))
        if source.start or source.stop is not None:
            records = records[source.start : source.stop]
        return iter(records)
    if isinstance(source, ConcatSource):
        return itertools.chain.from_iterable(_open_source(p, partition, env) for p in source.parts)
    if isinstance(source, ShuffleSource):
        return _read_shuffle(source, env)
    if isinstance(source, CoGroupSource):
        return _cogroup(source, partition, env)
    if isinstance(source, StateSource):
        return _read_state(source, env)
    if isinstance(source, ReaderSource):
        return source.reader.read(env, events.append if events is not None else _unreported)
    return iter(())


def _unreported(event: InputEvent) -> None:
    """Where a reader's events go when the task's runner collects none."""


def _read_input_block(source: BlockSource, env: TaskEnv) -> bytes:
    local = env.blocks.get(source.block_id)
    if local is not None:
        return local
    blob = next(_peer_copies(source.locations, source.block_id, env), None)
    if blob is not None:
        return blob
    if source.wal_path is not None:
        blob = read_verified(source.wal_path)
        if isinstance(blob, bytes):
            return blob
    raise BlockLostError(f"input block {source.block_id} is held by no live executor")


def _fetch_shuffle_blobs(source: ShuffleSource, env: TaskEnv) -> list[bytes]:
    """Map outputs in map order, so records of one key keep their input order."""
    blobs: dict[int, bytes | None] = {}
    remote: dict[ExecutorAddress, list[int]] = {}
    for map_index, location in enumerate(source.maps):
        if location.executor_id == env.executor_id:
            blobs[map_index] = env.blocks.get(
                shuffle_block_id(source.shuffle_id, map_index, source.reduce_index)
            )
        else:
            remote.setdefault(location, []).append(map_index)
    for location, map_indexes in remote.items():
        ids = [shuffle_block_id(source.shuffle_id, m, source.reduce_index) for m in map_indexes]
        try:
            fetched = env.fetch_blocks(location, ids)
        except ConnectionError as exc:
            raise FetchFailedError(
                source.shuffle_id, map_indexes[0], location.executor_id, str(exc)
            ) from exc
        blobs.update(zip(map_indexes, fetched, strict=True))
    ordered = []
    for map_index in range(len(source.maps)):
        blob = blobs[map_index]
        if blob is None:
            executor_id = source.maps[map_index].executor_id
            raise FetchFailedError(source.shuffle_id, map_index, executor_id, "block missing")
        ordered.append(blob)
    return ordered


def _read_shuffle(source: ShuffleSource, env: TaskEnv) -> Iterator[Any]:
    blobs = _fetch_shuffle_blobs(source, env)
    if source.aggregator is None:
        return itertools.chain.from_iterable(deserialise(b) for b in blobs)
    aggregator: Aggregator = env.functions.get(source.aggregator)
    combined: dict[Any, Any] = {}
    for blob in blobs:
        aggregator.merge_into(combined, deserialise(blob))
    return iter(combined.items())


def _cogroup(source: CoGroupSource, partition: int, env: TaskEnv) -> Iterator[Any]:
    width = len(source.parts)
    groups: dict[Any, tuple[list[Any], ...]] = {}
    for side, part in enumerate(source.parts):
        records = _open_source(part.source, partition, env)
        for ref in part.ops:
            records = iter(env.functions.get(ref)(partition, records))
        for key, value in records:
            slot = groups.get(key)
            if slot is None:
                slot = groups[key] = tuple([] for _ in range(width))
            slot[side].append(value)
    return iter(groups.items())


def _write_shuffle(output: ShuffleWrite, records: Iterator[Any], env: TaskEnv) -> None:
    n = output.num_partitions
    buckets: list[list[Any]] = [[] for _ in range(n)]
    if output.partitioner is None:
        for i, record in enumerate(records, start=output.map_index):
            buckets[i % n].append(record)
    else:
        partitioner: HashPartitioner = env.functions.get(output.partitioner)
        items: Iterable[Any] = records
        if output.aggregator is not None:
            aggregator: Aggregator = env.functions.get(output.aggregator)
            items = aggregator.combine_values(records).items()
        buckets = partitioner.split(items)
    for reduce_index, bucket in enumerate(buckets):
        block_id = shuffle_block_id(output.shuffle_id, output.map_index, reduce_index)
        env.blocks.put(block_id, serialise(bucket))
