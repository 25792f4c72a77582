"""Data checkpoints of keyed state as full snapshots plus deltas, compacted and bounded.

A checkpoint of the state is either full (`state-<t>.0`: every stream's entries) or a
delta (`state_delta-<t>.0`: each stream's updated entries and removed keys since the
checkpoint at `base`). Deltas follow a full in a chain; a full is written again
(compaction) after `max_deltas` deltas or once the chain's deltas outweigh its full, so
recovery reads one full and at most `max_deltas` deltas, and no more bytes than twice
the full. The `keep_fulls` newest fulls are kept with the deltas after the oldest of
them: at most keep_fulls * (max_deltas + 1) files. A file that does not verify ends its
chain there (recovery uses the chain up to it, or an older full's chain).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubestream.storage.checkpoint_store import CheckpointStore

log = logging.getLogger(__name__)

FULL = "state"
DELTA = "state_delta"
DEFAULT_MAX_DELTAS = 10
"""Deltas between fulls (Spark's spark.sql.streaming.stateStore.minDeltasForSnapshot)."""

Entries = list[tuple[Any, Any]]
Changes = tuple[dict[Any, Any], list[Any]]


@dataclass(slots=True)
class Chain:
    """Where the newest chain stands: its full's time and size, and its deltas'."""

    full_time: int
    last_time: int
    deltas: int = 0
    delta_bytes: int = 0
    full_bytes: int = 0


def apply_changes(entries: Entries, changes: list[Changes]) -> Entries:
    """`entries` with each (updated, removed) applied in order."""
    state = dict(entries)
    for updated, removed in changes:
        for key in removed:
            state.pop(key, None)
        state.update(updated)
    return list(state.items())


class StateCheckpoints:
    """The chain files of one checkpoint directory; see the module docstring."""

    def __init__(
        self,
        directory: str,
        keep_fulls: int = 2,
        max_deltas: int = DEFAULT_MAX_DELTAS,
        key: bytes | None = None,
    ) -> None:
        self.fulls = CheckpointStore(directory, keep_fulls, key)
        # Deltas are pruned with their fulls (write_full), not by count.
        self.deltas = CheckpointStore(directory, 1 << 30, key)
        self.max_deltas = max_deltas
        self.chain: Chain | None = None

    @property
    def span(self) -> int:
        """Checkpoints from the oldest that recovery may fall back to, to the newest."""
        return self.max_deltas + 2

    def delta_base(self) -> int | None:
        """The batch time a delta written now builds on; None when a full is due."""
        chain = self.chain
        if chain is None or chain.deltas >= self.max_deltas:
            return None
        if chain.deltas and chain.delta_bytes >= chain.full_bytes:
            return None
        return chain.last_time

    def path(self, batch_time: int, full: bool) -> str:
        """Where the full checkpoint or the delta of `batch_time` is written."""
        if full:
            return self.fulls.path(FULL, batch_time, 0)
        return self.deltas.path(DELTA, batch_time, 0)

    def write_full(self, batch_time: int, streams: Mapping[Any, Entries]) -> None:
        path = self.fulls.write(FULL, batch_time, 0, dict(streams))
        self.chain = Chain(batch_time, batch_time, full_bytes=os.path.getsize(path))
        kept = self.fulls.times(FULL)
        for time in self.deltas.times(DELTA):
            if time < kept[0]:
                self.deltas.remove(DELTA, time)

    def write_delta(self, batch_time: int, streams: Mapping[Any, Changes]) -> None:
        chain = self.chain
        if chain is None:
            raise RuntimeError("a state delta needs a full checkpoint before it")
        payload = {"base": chain.last_time, "streams": dict(streams)}
        path = self.deltas.write(DELTA, batch_time, 0, payload)
        chain.last_time = batch_time
        chain.deltas += 1
        chain.delta_bytes += os.path.getsize(path)

    def read_newest(self, covered: int) -> tuple[int, dict[Any, Entries]] | None:
        """(batch time, entries per stream) of the newest state recoverable at or before
        `covered`: the newest full that verifies and its deltas up to the first gap or
        unusable one. Resets the chain there, so the next delta builds on it."""
        delta_times = [t for t in self.deltas.times(DELTA) if t <= covered]
        for full_time in reversed(self.fulls.times(FULL)):
            if full_time > covered:
                continue
            full = self.fulls.read(FULL, full_time)
            if full is None:
                continue
            chain = Chain(full_time, full_time, full_bytes=self._size(FULL, full_time))
            pending: dict[Any, list[Changes]] = {stream: [] for stream in full}
            for time in (t for t in delta_times if t > full_time):
                delta = self.deltas.read(DELTA, time)
                if delta is None or delta["base"] != chain.last_time:
                    log.warning(
                        "state delta %d %s: recovering the state of batch %d",
                        time,
                        "is unusable" if delta is None else "follows another chain",
                        chain.last_time,
                    )
                    break
                for stream, changes in delta["streams"].items():
                    pending.setdefault(stream, []).append(changes)
                chain.last_time = time
                chain.deltas += 1
                chain.delta_bytes += self._size(DELTA, time)
            self.chain = chain
            return chain.last_time, {
                stream: apply_changes(full.get(stream, []), changes)
                for stream, changes in pending.items()
            }
        return None

    def _size(self, prefix: str, batch_time: int) -> int:
        store = self.fulls if prefix == FULL else self.deltas
        return store.size(prefix, batch_time)
