"""An executor's keyed state partitions, kept as dicts in memory and versioned by batch.

update_state_by_key and map_with_state keep each partition of their state here,
on the executor that updates it and on one replica. A batch changes its
partition and records, per version, how to undo it: the old values of the keys
it changed, or, when it changed a large share of the keys, the whole previous
dict (the batch then applies to a copy, see COPY_SHARE). A retried task, a lagging
reader or a replica can go back to an older version while the driver still holds
it, and a replica is sent only a version's changes. Version ids are block ids
(`state_<stream>_<t>_<split>`), so the driver's block cleanup drops versions as it
drops blocks.

A replica queues the deltas it receives and answers at once: a background thread
(apply_pending) unpickles and applies them in order, so the primary's task does not
wait for the replica's work, and anything that reads a partition first applies what
is queued for it (settle). A delta on a base other than the newest held or queued
version (a retried batch) is applied at once, rolling back as checkout does.

For incremental data checkpoints each partition also remembers when each key last
changed (`changed_at`, from `tracked_since` on): the driver asks for the changes
since its previous checkpoint (`changes`) and writes only those. Keys removed long
ago are forgotten once they outnumber the live ones (raising `tracked_since`), so
the record stays bounded by the state's size; a question about older changes then
gets None, and the driver writes a full snapshot instead.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass, field
from typing import Any

PartitionKey = tuple[str, int]  # (state family, split)
STATE_BLOCK_PREFIX = "state_"


@dataclass(frozen=True, slots=True)
class StateDelta:
    """What one batch changed in one partition, and the records it emitted (map_with_state)."""

    updated: dict[Any, Any]
    removed: list[Any]
    mapped: list[Any] | None = None


@dataclass(slots=True)
class _Version:
    previous: str | None
    old: dict[Any, Any]  # value before this version of each changed key that existed
    added: list[Any]  # keys this version created
    mapped: list[Any] | None
    replaced: dict[Any, Any] | None = None  # the whole previous dict, instead of old and added


@dataclass(slots=True)
class PartitionState:
    """One partition at its newest version (`head`), with the undo records of older ones.

    `by_time` is map_with_state's timeout index (update time -> keys), kept in step by
    commits once built; None until the updater needs it. `changed_at` (key -> batch
    time ms of its latest change) holds every key changed after `tracked_since`.
    """

    key: PartitionKey
    head: str
    data: dict[Any, Any]
    versions: dict[str, _Version] = field(default_factory=dict)
    by_time: dict[int, dict[Any, None]] | None = None
    changed_at: dict[Any, int] = field(default_factory=dict)
    tracked_since: int = 0


@dataclass(frozen=True, slots=True)
class _QueuedDelta:
    """A replica's delta not applied yet: `payload` is the pickled StateDelta."""

    base: str
    version: str
    payload: bytes


class StateStore:
    def __init__(self, copy_share: float | None = None) -> None:
        """copy_share: COPY_SHARE unless given (tests force either way of undoing)."""
        self._copy_share = COPY_SHARE if copy_share is None else copy_share
        self._parts: dict[PartitionKey, PartitionState] = {}
        self._where: dict[str, PartitionKey] = {}
        self._queued: dict[PartitionKey, list[_QueuedDelta]] = {}
        self._lock = threading.RLock()

    def checkout(self, key: PartitionKey, version: str) -> PartitionState | None:
        """The partition at `version`, rolling back newer versions (a retried or redone
        batch); None when this executor cannot produce that version."""
        with self._lock:
            self._settle(key)
            return self._checkout(key, version)

    def _checkout(self, key: PartitionKey, version: str) -> PartitionState | None:
        with self._lock:
            part = self._parts.get(key)
            if part is None or not self._reachable(part, version):
                return None
            while part.head != version:
                undone = part.versions.pop(part.head)
                if undone.replaced is not None:
                    part.data = undone.replaced
                for k in undone.added:
                    part.data.pop(k, None)
                part.data.update(undone.old)
                self._where.pop(part.head, None)
                assert undone.previous is not None
                part.head = undone.previous
                part.by_time = None
            return part

    def _reachable(self, part: PartitionState, version: str) -> bool:
        current: str | None = part.head
        while current is not None and current != version:
            entry = part.versions.get(current)
            current = entry.previous if entry is not None else None
        return current == version and version in part.versions

    def install(
        self, key: PartitionKey, version: str, data: dict[Any, Any], mapped: list[Any] | None
    ) -> PartitionState:
        """A whole partition at `version` (first batch, recovery, a fetched or full replica)."""
        with self._lock:
            self._drop(key)
            part = PartitionState(key, version, data, {version: _Version(None, {}, [], mapped)})
            part.tracked_since = version_time(version)
            self._parts[key] = part
            self._where[version] = key
            return part

    def commit(self, part: PartitionState, version: str, delta: StateDelta) -> None:
        """Apply a batch's changes to the partition at its head, as `version`."""
        with self._lock:
            time = version_time(version)
            part.changed_at.update(dict.fromkeys(delta.updated, time))
            part.changed_at.update(dict.fromkeys(delta.removed, time))
            changes = len(delta.updated) + len(delta.removed)
            if part.by_time is None and changes >= self._copy_share * len(part.data):
                undo = _commit_to_copy(part, delta)
            else:
                undo = _commit_in_place(part, delta)
            part.versions[version] = undo
            part.head = version
            self._where[version] = part.key
            if len(part.changed_at) > 2 * len(part.data) + FORGET_REMOVED_AFTER:
                _forget_removed(part)

    def changes(self, version: str, since: int) -> tuple[dict[Any, Any], list[Any]] | None:
        """(updated entries, removed keys) of `version` against the partition's version at
        batch time `since` (ms), for an incremental checkpoint: disjoint, and possibly
        naming keys changed after `version` too (at their value there, or as removed).
        None when this executor cannot tell (it does not hold `version`, or tracks
        changes from later than `since`). Changes at or before `since` are forgotten:
        the driver has them."""
        with self._lock:
            key = self._where.get(version)
            part = self._settled(key)
            if part is None or since < part.tracked_since or not self._reachable(part, version):
                return None
            changed = {k: t for k, t in part.changed_at.items() if t > since}
            part.changed_at, part.tracked_since = changed, since
            at = _data_at(part, version)
            updated: dict[Any, Any] = {}
            removed: list[Any] = []
            for k in changed:
                value = at.get(k, _ABSENT)
                if value is _ABSENT:
                    removed.append(k)
                else:
                    updated[k] = value
            return updated, removed

    def read(
        self, version: str, entries: bool = True
    ) -> tuple[list[tuple[Any, Any]], list[Any] | None] | None:
        """(entries, mapped records) of a version held here, entries [] unless `entries`;
        None when not held."""
        with self._lock:
            key = self._where.get(version)
            part = self._settled(key)
            if part is None or not self._reachable(part, version):
                return None
            mapped = part.versions[version].mapped
            if not entries:
                return [], mapped
            return list(_data_at(part, version).items()), mapped

    def snapshot(self, version: str) -> bytes | None:
        """A version as a full-replica message, for a peer that lacks it; None when not held."""
        with self._lock:
            key = self._where.get(version)
            found = self.read(version)
        if key is None or found is None:
            return None
        entries, mapped = found
        return full_message(key, version, dict(entries), mapped)

    def serve(self, block_id: str) -> bytes | None:
        """What a peer fetching `block_id` gets: a version as a full-replica message, or for
        `changes_id(version, since)` the pickled changes (None when not held or not told)."""
        version, at, since = block_id.partition(CHANGES_SEPARATOR)
        if not at:
            return self.snapshot(block_id)
        found = self.changes(version, int(since))
        return None if found is None else pickle.dumps(found, pickle.HIGHEST_PROTOCOL)

    def receive(self, blob: bytes) -> bool:
        """Take a replica message (delta or full); False when a delta's base is not held.

        A delta on the newest version held or queued is queued (see apply_pending);
        any other is applied now."""
        message = pickle.loads(blob)
        if message[0] == "full":
            _, key, version, data, mapped = message
            self.install(key, version, data, mapped)
            return True
        _, key, base, version, payload = message
        with self._lock:
            queued = self._queued.get(key)
            part = self._parts.get(key)
            newest = queued[-1].version if queued else part.head if part is not None else None
            if base == newest:
                self._queued.setdefault(key, []).append(_QueuedDelta(base, version, payload))
                self._where[version] = key
                return True
            self._settle(key)
            part = self._checkout(key, base)
            if part is None:
                return False
            self.commit(part, version, pickle.loads(payload))
            return True

    def queued_deltas(self) -> int:
        """Replica deltas received and not yet applied, over all partitions."""
        with self._lock:
            return sum(len(queued) for queued in self._queued.values())

    def apply_pending(self) -> bool:
        """Apply the oldest queued delta of one partition; False when none is queued.

        Unpickles outside the lock, so tasks reading other partitions do not wait."""
        with self._lock:
            key = next(iter(self._queued), None)
            if key is None:
                return False
            first = self._queued[key][0]
        delta = pickle.loads(first.payload)
        with self._lock:
            queued = self._queued.get(key)
            if queued and queued[0] is first:  # else settled or dropped meanwhile
                self._apply_first(key, delta)
        return True

    def _settle(self, key: PartitionKey | None) -> None:
        """Apply every delta queued for `key`, in order."""
        with self._lock:
            while key is not None and self._queued.get(key):
                self._apply_first(key, pickle.loads(self._queued[key][0].payload))

    def _settled(self, key: PartitionKey | None) -> PartitionState | None:
        if key is None:
            return None
        self._settle(key)
        return self._parts.get(key)

    def _apply_first(self, key: PartitionKey, delta: StateDelta) -> None:
        queued = self._queued[key]
        first = queued.pop(0)
        if not queued:
            del self._queued[key]
        self._where.pop(first.version, None)
        part = self._checkout(key, first.base)
        if part is None:  # its base was dropped meanwhile: the rest cannot apply either
            for later in self._queued.pop(key, []):
                self._where.pop(later.version, None)
            return
        self.commit(part, first.version, delta)

    def remove_prefix(self, prefix: str) -> None:
        """Drop versions whose id starts with prefix; dropping a head drops its partition."""
        with self._lock:
            for queued_key in {self._where[v] for v in self._where if v.startswith(prefix)}:
                self._settle(queued_key)
            for version in [v for v in self._where if v.startswith(prefix)]:
                key = self._where.get(version)
                part = self._parts.get(key) if key is not None else None
                if part is None:
                    self._where.pop(version, None)
                elif version == part.head:
                    self._drop(part.key)
                else:
                    del self._where[version]
                    part.versions.pop(version, None)
                    for entry in part.versions.values():
                        if entry.previous == version:  # nothing reads back past a dropped version
                            entry.previous, entry.old, entry.added = None, {}, []
                            entry.replaced = None

    def _drop(self, key: PartitionKey) -> None:
        for queued in self._queued.pop(key, []):
            self._where.pop(queued.version, None)
        part = self._parts.pop(key, None)
        if part is not None:
            for version in part.versions:
                self._where.pop(version, None)

    def heads(self) -> list[str]:
        """The newest version of every partition held (what a draining executor hands over)."""
        with self._lock:
            for key in list(self._queued):
                self._settle(key)
            return [p.head for p in self._parts.values()]

    def stats(self) -> tuple[int, int]:
        """(versions held, entries in head versions)."""
        with self._lock:
            return len(self._where), sum(len(p.data) for p in self._parts.values())


COPY_SHARE = 0.25
"""A batch changing at least this share of a partition's keys applies to a copy of its
dict and keeps the old dict as its undo record: the copy is a C-speed pass over the
partition, while recording old values is a Python-speed pass over the changes, ~30x
slower a key; below this share the old values take far less memory than a whole dict.
A state with a timeout index always records old values (the index needs them)."""


def _commit_to_copy(part: PartitionState, delta: StateDelta) -> _Version:
    """Apply delta to a copy of the partition's dict; the old dict is the undo record."""
    replaced = part.data
    part.data = replaced | delta.updated
    for k in delta.removed:
        part.data.pop(k, None)
    return _Version(part.head, {}, [], delta.mapped, replaced)


def _commit_in_place(part: PartitionState, delta: StateDelta) -> _Version:
    """Apply delta to the partition's dict, recording the old values it changes (and
    keeping the timeout index in step)."""
    data, index = part.data, part.by_time
    old: dict[Any, Any] = {}
    added: list[Any] = []
    for k, value in delta.updated.items():
        if k in data:
            previous = old[k] = data[k]
            if index is not None:
                _unindex(index, k, previous)
        else:
            added.append(k)
        data[k] = value
        if index is not None:
            index.setdefault(value[1], {})[k] = None
    for k in delta.removed:
        if k in data:
            previous = data.pop(k)
            if k not in old and k not in delta.updated:  # else its undo is recorded
                old[k] = previous
            if index is not None:
                _unindex(index, k, previous)
    return _Version(part.head, old, added, delta.mapped)


def _data_at(part: PartitionState, version: str) -> dict[Any, Any]:
    """The partition's entries at `version`, which it holds; the head's own dict when
    `version` is the head, so the caller must not change it."""
    view, owned = part.data, False
    current = part.head
    while current != version:
        entry = part.versions[current]
        if entry.replaced is not None:
            view, owned = entry.replaced, False
        if entry.added or entry.old:
            if not owned:
                view, owned = dict(view), True
            for k in entry.added:
                view.pop(k, None)
            view.update(entry.old)
        assert entry.previous is not None
        current = entry.previous
    return view


FORGET_REMOVED_AFTER = 1024
"""Keys whose changes are remembered beyond twice the live ones before the older half of
the removed ones are forgotten."""

_ABSENT = object()


CHANGES_SEPARATOR = "@changes-since-"


def changes_id(version: str, since: int) -> str:
    """The id a peer fetches to get `changes(version, since)` (see StateStore.serve)."""
    return f"{version}{CHANGES_SEPARATOR}{since}"


def version_time(version: str) -> int:
    """The batch time (ms) of a version id `state_<stream>_<t>_<split>`."""
    return int(version.rsplit("_", 2)[1])


def _forget_removed(part: PartitionState) -> None:
    """Forget the older half of the removed keys, so the record stays bounded by the
    state: changes can then be told from the newest forgotten time on."""
    data = part.data
    gone = sorted(t for k, t in part.changed_at.items() if k not in data)
    if gone:
        cutoff = gone[len(gone) // 2]
        part.tracked_since = max(part.tracked_since, cutoff)
        part.changed_at = {k: t for k, t in part.changed_at.items() if t > cutoff or k in data}


def delta_message(key: PartitionKey, base: str, version: str, delta: StateDelta) -> bytes:
    """The delta pickled apart from its header, so a replica can queue it unread."""
    payload = pickle.dumps(delta, pickle.HIGHEST_PROTOCOL)
    return pickle.dumps(("delta", key, base, version, payload), pickle.HIGHEST_PROTOCOL)


def full_message(key: PartitionKey, version: str, data: dict[Any, Any], mapped: Any) -> bytes:
    return pickle.dumps(("full", key, version, data, mapped), pickle.HIGHEST_PROTOCOL)


def is_state_block(block_id: str) -> bool:
    return block_id.startswith(STATE_BLOCK_PREFIX)


def build_time_index(data: dict[Any, Any]) -> dict[int, dict[Any, None]]:
    """map_with_state's timeout index over entries (key -> (value, update time))."""
    index: dict[int, dict[Any, None]] = {}
    for k, (_, updated_at) in data.items():
        index.setdefault(updated_at, {})[k] = None
    return index


def _unindex(index: dict[int, dict[Any, None]], key: Any, entry: Any) -> None:
    bucket = index.get(entry[1])
    if bucket is not None:
        bucket.pop(key, None)
        if not bucket:
            del index[entry[1]]
