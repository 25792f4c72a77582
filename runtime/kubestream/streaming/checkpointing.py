"""Metadata checkpoints every batch, data checkpoints of state every N batches, and recovery.

A data checkpoint writes only the keys that changed since the previous one, with a
full snapshot every few (storage.state_checkpoints), so its cost follows the
changes, not the state's size. Recovery rebuilds the graph from the application
(so checkpoints hold no code), checks it against the checkpoint's fingerprint,
restores source positions and the state of the newest data checkpoint (a full and
the deltas after it), and resumes at the batch after it.
Batches between that data checkpoint and the crash run again on the same
inputs (each source recorded them), and batch outputs replace themselves
atomically, so replayable sources give exactly-once output.
"""

from __future__ import annotations

import difflib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import gmtime, strftime
from time import time as wall_clock
from typing import TYPE_CHECKING, Any

from kubestream.errors import CheckpointWriteError, ConfigError, describe_error
from kubestream.storage.checkpoint_store import CheckpointStore
from kubestream.storage.state_checkpoints import Changes, Entries, StateCheckpoints
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.dstream import StatefulDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv

log = logging.getLogger(__name__)

METADATA = "metadata"
MIN_DATA_INTERVAL_MS = 10_000


def data_interval_ms(batch_ms: int, slides: list[int], requested_ms: int | None) -> int:
    """A multiple of every stateful stream's slide, at least 10 s unless asked (Spark's rule)."""
    unit = math.lcm(batch_ms, *slides) if slides else batch_ms
    wanted = requested_ms or MIN_DATA_INTERVAL_MS
    return max(unit, math.ceil(wanted / unit) * unit)


def describe_change(old: list[str], new: list[str], directory: str) -> str:
    diff = [
        line
        for line in difflib.unified_diff(old, new, "checkpoint", "application", lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    return (
        f"the application's stream graph differs from the one checkpointed in {directory}:\n  "
        + "\n  ".join(diff[:12])
        + f"\nTo run the changed application, start fresh: use an empty checkpoint directory "
        f"(or delete {directory}), accepting that its state and positions are lost."
    )


@dataclass(frozen=True, slots=True)
class CheckpointProblem:
    """Why checkpoints cannot be written now: the file that failed, the error (its type and
    the operating system's words), since when (Unix s) and how many writes failed since."""

    path: str
    error: str
    since: float
    failures: int


class CheckpointHealth:
    """Whether checkpoints are being written: for the status document, metrics and log.

    A failed write is logged at once, then at most once a minute while the problem
    lasts (the job runs on and tries again every batch); the first write that
    succeeds again clears it and says so.
    """

    LOG_EVERY = 60.0

    def __init__(self, directory: str, now: Callable[[], float] = wall_clock) -> None:
        self.directory = directory
        self._now = now
        self._lock = threading.Lock()
        self.problem: CheckpointProblem | None = None
        self.write_failures = 0
        self.last_written: float | None = None
        self.last_batch_time: int | None = None
        self._logged: float | None = None

    def written(self, batch_time: int) -> None:
        with self._lock:
            problem, self.problem = self.problem, None
            self.last_written = self._now()
            self.last_batch_time = batch_time
        if problem is not None:
            log.warning(
                "checkpoints are written again in %s, after %d failed writes since %s",
                self.directory,
                problem.failures,
                strftime("%H:%M:%S", gmtime(problem.since)),
            )

    def failed(self, path: str, exc: BaseException) -> None:
        now = self._now()
        with self._lock:
            self.write_failures += 1
            before = self.problem
            since = before.since if before else now
            failures = before.failures + 1 if before else 1
            self.problem = CheckpointProblem(path, describe_error(exc), since, failures)
            due = self._logged is None or before is None or now - self._logged >= self.LOG_EVERY
            if due:
                self._logged = now
        if due:
            log.error(
                "cannot write checkpoint %s: %s (%d failed writes; the job runs on and "
                "tries again every batch; free space or fix the directory's permissions)",
                path,
                self.problem.error,
                failures,
            )

    def view(self) -> dict[str, Any]:
        """The status document's `checkpoint` object (docs/status-api.md)."""
        with self._lock:
            problem = self.problem
            return {
                "directory": self.directory,
                "problem": None
                if problem is None
                else {
                    "path": problem.path,
                    "error": problem.error,
                    "since": problem.since,
                    "failures": problem.failures,
                },
                "last_written": self.last_written,
                "last_batch_time": self.last_batch_time,
                "write_failures": self.write_failures,
            }


class Checkpointer:
    def __init__(
        self,
        env: StreamingEnv,
        graph_lock: threading.RLock,
        directory: str,
        data_interval: float | None = None,
        keep: int = 10,
        now: Callable[[], float] = wall_clock,
    ) -> None:
        self.env = env
        self.graph_lock = graph_lock
        self.directory = directory
        self.health = CheckpointHealth(directory, now)
        self.store = CheckpointStore(directory, keep)
        self.state_checkpoints = StateCheckpoints(directory)
        self._requested_ms = None if data_interval is None else round(data_interval * 1000)
        self.interval_ms = env.batch_interval_ms
        self.data_time: int | None = None
        self.history_ms = 0

    @property
    def stateful(self) -> list[StatefulDStream]:
        return [s for s in self.env.graph.streams if isinstance(s, StatefulDStream)]

    def prepare(self) -> None:
        """Fix the data checkpoint interval and how far back sources keep what they read."""
        batch_ms = self.env.batch_interval_ms
        asked = [self._requested_ms, *(s.checkpoint_interval_ms for s in self.env.graph.streams)]
        self.interval_ms = data_interval_ms(
            batch_ms, [s.slide_ms for s in self.stateful], min(filter(None, asked), default=None)
        )
        self.history_ms = (
            self.state_checkpoints.span * self.interval_ms
            + self.env.graph.max_remember_ms()
            + 2 * batch_ms
        )
        for stream in self.env.graph.inputs:
            stream.checkpoint_state()  # refuses, with its reason, a stream that cannot resume
            stream.history_ms = self.history_ms

    def recover(self) -> int | None:
        """Restore from the newest usable checkpoint; returns the batch time to resume at."""
        found = self.store.read_newest(METADATA)
        if found is None:
            return None
        path, meta = found
        graph = self.env.graph
        if meta["fingerprint"] != graph.fingerprint():
            raise ConfigError(
                describe_change(meta["fingerprint"], graph.fingerprint(), self.directory)
            )
        if meta["batch_interval_ms"] != self.env.batch_interval_ms:
            raise ConfigError(
                f"the checkpoint in {self.directory} was written with a batch interval of "
                f"{meta['batch_interval_ms']} ms, not {self.env.batch_interval_ms} ms; use the "
                "same interval, or an empty checkpoint directory to start fresh"
            )
        graph.zero_time = meta["zero_time"]
        for stream in graph.inputs:
            stream.restore_state(meta["inputs"].get(stream.id, {}))
        self.env.receiver_tracker.restore_state(meta["receivers"])
        interval = self.env.batch_interval_ms
        resume = self._restore_state(meta)
        if resume is None:
            pending, last = meta["pending"], meta["last_completed"]
            if pending:
                resume = min(pending)
            else:
                resume = (graph.zero_time if last is None else last) + interval
        log.warning(
            "recovered from checkpoint %s: resuming at batch %d (last completed %s)",
            path,
            resume,
            meta["last_completed"],
        )
        return int(resume)

    def _restore_state(self, meta: dict[str, Any]) -> int | None:
        if not self.stateful:
            return None
        # Any state of a batch this metadata covers will do: the sources recorded every
        # generated batch's input. A driver catching up generates batches (and writes
        # their metadata) ahead of completing them, so the newest metadata may name an
        # older data checkpoint than ones written since, which pruning may have left alone.
        covered = max([*meta["pending"], meta["last_completed"] or 0, meta["data_time"] or 0])
        found = self.state_checkpoints.read_newest(covered)
        if found is None:
            log.warning("no usable state checkpoint: replaying from the job's first batch")
            return self.env.graph.zero_time + self.env.batch_interval_ms
        time, data = found
        for stream in self.stateful:
            stream.restore_records(time, data.get(stream.id, []))
        self.data_time = time
        return time + self.env.batch_interval_ms

    def _metadata(self, last_completed: int | None, pending: list[int]) -> dict[str, Any]:
        graph = self.env.graph
        return {
            "version": 1,
            "fingerprint": graph.fingerprint(),
            "batch_interval_ms": self.env.batch_interval_ms,
            "zero_time": graph.zero_time,
            "inputs": {s.id: s.checkpoint_state() for s in graph.inputs},
            "receivers": self.env.receiver_tracker.checkpoint_state(),
            "pending": sorted(pending),
            "last_completed": last_completed,
            "data_time": self.data_time,
        }

    def _write(
        self, store: CheckpointStore, prefix: str, batch_time: int, phase: int, payload: Any
    ) -> None:
        """One checkpoint file, its outcome recorded in `health`.

        Raises
        ------
        CheckpointWriteError
            The file could not be written; the message names it and the cause.
        """
        path = store.path(prefix, batch_time, phase)
        self._guard(path, batch_time, lambda: store.write(prefix, batch_time, phase, payload))

    def _guard(self, path: str, batch_time: int, write: Callable[[], object]) -> None:
        """Run `write` (of the file at `path`), its outcome recorded in `health`; raises
        CheckpointWriteError as _write."""
        try:
            write()
        except Exception as exc:
            self.health.failed(path, exc)
            raise CheckpointWriteError(f"cannot write {path}: {describe_error(exc)}") from exc
        self.health.written(batch_time)

    def started_fresh(self) -> None:
        """Record where a new job starts (e.g. the files it skips), so a crash before its
        first batch resumes this job instead of starting another one."""
        with self.graph_lock:
            metadata = self._metadata(None, [])
            self._write(self.store, METADATA, self.env.graph.zero_time, 0, metadata)

    def batch_generated(
        self, batch_time: int, last_completed: int | None, pending: list[int]
    ) -> None:
        with self.graph_lock:
            metadata = self._metadata(last_completed, pending)
            self._write(self.store, METADATA, batch_time, 0, metadata)

    def batch_completed(
        self, info: BatchInfo, pending: list[int], force_data: bool = False
    ) -> None:
        """Metadata always; state when the batch is due for a data checkpoint and succeeded.

        Raises the first write's error after trying both: metadata written after a failed
        state write still names the last state written, so recovery stays exact.
        """
        t = info.batch_time
        due = (t - self.env.graph.zero_time) % self.interval_ms == 0
        failure: Exception | None = None
        if self.stateful and (due or force_data) and not info.failed:
            try:
                self._write_state(t)
            except Exception as exc:
                failure = exc
        try:
            with self.graph_lock:
                self._write(self.store, METADATA, t, 1, self._metadata(t, pending))
        except Exception as exc:
            failure = failure or exc
        if failure is not None:
            raise failure

    def _write_state(self, batch_time: int) -> None:
        """The changes since the previous data checkpoint when every stream can tell them
        and no full snapshot is due; else every stream's whole state."""
        streams, chain = self.stateful, self.state_checkpoints
        if any((batch_time - self.env.graph.zero_time) % s.slide_ms for s in streams):
            return
        base = chain.delta_base()
        if base is not None:
            changes: dict[int, Changes] = {}
            for stream in streams:
                found = stream.checkpoint_changes(batch_time, base)
                if found is None:
                    break
                changes[stream.id] = found
            else:
                path = self.state_checkpoints.path(batch_time, full=False)
                self._guard(path, batch_time, lambda: chain.write_delta(batch_time, changes))
                self.data_time = batch_time
                return
        data: dict[int, Entries] = {}
        for stream in streams:
            records = stream.checkpoint_records(batch_time)
            if records is None:
                return
            data[stream.id] = records
        path = self.state_checkpoints.path(batch_time, full=True)
        self._guard(path, batch_time, lambda: chain.write_full(batch_time, data))
        self.data_time = batch_time
