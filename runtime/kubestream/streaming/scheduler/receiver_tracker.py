"""Places receivers on executors and allocates the blocks they report to batches.

A block reported before a batch's time is allocated to that batch, once. A
receiver whose executor is lost is started again on another one.

Every reported block is answered (BlockRecorded, Spark's reply to AddBlock), and a
reliable receiver acknowledges its source only after a yes. Yes means the block is
held here for a batch; with the write-ahead log it also means a restarted driver
processes it: the block's log file was written before the report, so it existed
while this driver lived, and a successor either finds the block in its checkpoint
or adopts the file when it starts (adopt_orphans). No means the stream is not
received on that executor now (a receiver left over from a previous driver, or one
moved away): its log file is deleted at once, since its source will send the
records again to the receiver that is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import os
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from kubestream.core.protocol import (
    BadRecords,
    BlockAbandoned,
    BlockAdded,
    BlockRecorded,
    ReceiverMessage,
    ReceiverStatus,
    StartReceiver,
    StopReceiver,
    ToExecutor,
    UpdateRateLimit,
)
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.receiver import Receiver
from kubestream.storage.block_manager import deserialise
from kubestream.storage.checkpoint_store import read_verified

log = logging.getLogger(__name__)

SPARK_BLOCK_INTERVAL = 0.2
"""Seconds: spark.streaming.blockInterval's default."""


def default_block_interval(batch_interval: float) -> float:
    """The longest interval up to Spark's 200 ms that divides the batch interval into at least
    two blocks. Receivers cut blocks on the clock's multiples of it, so every batch gets the
    same number of blocks: with 200 ms blocks, 500 ms batches got two or three (8,200 or
    12,600 lines at 20,000 lines/s)."""
    return batch_interval / max(2, math.ceil(batch_interval / SPARK_BLOCK_INTERVAL - 1e-9))


@dataclass(frozen=True, slots=True)
class ReceivedBlock:
    block_id: str
    records: int
    executor_id: str
    replica: str | None = None
    wal_path: str | None = None

    def holders(self) -> tuple[str, ...]:
        return (self.executor_id,) if self.replica is None else (self.executor_id, self.replica)


@dataclass(slots=True)
class ReceiverInfo:
    stream_id: int
    receiver: Receiver
    executor_id: str | None = None
    state: str = "pending"
    last_error: str = ""
    rate_limit: float | None = None
    bad_records: dict[str, int] = field(default_factory=dict)
    """Records the receiver could not store as they came, by reason (BadRecords)."""


class ReceiverTracker:
    """Spark's ReceiverTracker: owned by the streaming context, told of executors by the engine."""

    def __init__(
        self,
        send: Callable[[str, ToExecutor], None],
        executors: Callable[[], dict[str, ExecutorAddress]],
        block_interval: float = SPARK_BLOCK_INTERVAL,
    ) -> None:
        self._send = send
        self._executors = executors
        self.block_interval = block_interval
        self.wal_dir: str | None = None
        self._receivers: dict[int, ReceiverInfo] = {}
        self._unallocated: dict[int, list[ReceivedBlock]] = {}
        self._allocated: dict[int, dict[int, list[ReceivedBlock]]] = {}
        self._lock = threading.Condition()
        self._placement = itertools.count()
        self._running = False
        self._draining: set[str] = set()
        self.status_listeners: list[Callable[[str, ReceiverStatus], None]] = []

    def register(self, stream_id: int, receiver: Receiver) -> None:
        with self._lock:
            self._receivers[stream_id] = ReceiverInfo(stream_id, receiver)
            self._unallocated.setdefault(stream_id, [])

    def start(self) -> None:
        with self._lock:
            self._running = True
        self.place_receivers()

    def place_receivers(self) -> None:
        """Start every receiver that has no live executor, spreading them round-robin."""
        launches: list[tuple[str, ToExecutor]] = []
        with self._lock:
            addresses = self._executors()
            alive = sorted(e for e in addresses if e not in self._draining)
            if not self._running or not alive:
                return
            for info in self._receivers.values():
                if info.executor_id in alive:
                    continue
                executor_id = alive[next(self._placement) % len(alive)]
                info.executor_id, info.state = executor_id, "starting"
                blob = bytes(cloudpickle.dumps(info.receiver, protocol=pickle.HIGHEST_PROTOCOL))
                replicas = tuple(addresses[e] for e in alive if e != executor_id)
                launches.append(
                    (
                        executor_id,
                        StartReceiver(
                            info.stream_id,
                            blob,
                            self.block_interval,
                            replicas,
                            self.wal_dir,
                            info.rate_limit,
                        ),
                    )
                )
        for executor_id, message in launches:
            log.info("starting receiver %s on executor %s", message.stream_id, executor_id)  # type: ignore[union-attr]
            self._send(executor_id, message)

    def set_rate_limit(self, stream_id: int, rate: float | None) -> None:
        """Records per second the receiver may store; kept for when it moves executors."""
        with self._lock:
            info = self._receivers[stream_id]
            info.rate_limit = rate
            executor_id = info.executor_id
        if executor_id is not None:
            self._send(executor_id, UpdateRateLimit(stream_id, rate))

    def move_receivers_off(self, executor_id: str, timeout: float) -> None:
        """Stop the executor's receivers (each flushes what it stored) and start them elsewhere;
        it gets no receiver from now on."""
        with self._lock:
            self._draining.add(executor_id)
            moving = [i for i in self._receivers.values() if i.executor_id == executor_id]
        for info in moving:
            self._send(executor_id, StopReceiver(info.stream_id))
        with self._lock:
            if not self._lock.wait_for(lambda: all(i.state == "stopped" for i in moving), timeout):
                log.warning(
                    "receivers on %s did not confirm their stop in %.0f s", executor_id, timeout
                )
            for info in moving:
                info.executor_id, info.state = None, "moving"
        self.place_receivers()

    def executor_added(self, executor_id: str) -> None:
        self.place_receivers()

    def receiver_message(self, executor_id: str, message: ReceiverMessage) -> None:
        if isinstance(message, BlockAdded):
            refusal = self.add_block(executor_id, message)
            answer = BlockRecorded(message.stream_id, message.block_id, not refusal, refusal)
            self._send(executor_id, answer)
        elif isinstance(message, BlockAbandoned):
            self.abandon_block(executor_id, message)
        elif isinstance(message, BadRecords):
            self.add_bad_records(message)
        else:
            self.update_status(executor_id, message)

    def blocks_moved(self, executor_id: str, moves: dict[str, str]) -> None:
        """Blocks a draining executor copied elsewhere are held there now."""

        def moved(block: ReceivedBlock) -> ReceivedBlock:
            target = moves.get(block.block_id)
            if target is None:
                return block
            if block.executor_id == executor_id:
                return dataclasses.replace(block, executor_id=target)
            if block.replica == executor_id:
                return dataclasses.replace(block, replica=target)
            return block

        with self._lock:
            for streams in [*self._allocated.values(), self._unallocated]:
                for stream_id, blocks in streams.items():
                    streams[stream_id] = [moved(b) for b in blocks]

    def executor_lost(self, executor_id: str) -> None:
        """Restart its receivers elsewhere, and adopt the blocks it logged but never reported:
        its source was acknowledged once the log held them, so they exist nowhere else."""
        with self._lock:
            self._draining.discard(executor_id)
            for info in self._receivers.values():
                if info.executor_id == executor_id:
                    info.executor_id, info.state = None, "lost"
        self.adopt_orphans(written_by=executor_id)
        self.place_receivers()

    def add_block(self, executor_id: str, block: BlockAdded) -> str:
        """Hold the block for the next batch; returns "" when it is held (now or before),
        else why it is refused (its log file is then deleted)."""
        with self._lock:
            if block.block_id in self._tracked_ids(block.stream_id):
                return ""  # adopted from the log, or a report sent again after a reconnect
            info = self._receivers.get(block.stream_id)
            if info is None or info.executor_id != executor_id:
                where = "nowhere" if info is None or info.executor_id is None else "elsewhere"
                self._delete_logged(block.wal_path)
                return f"stream {block.stream_id} is received {where} now, not on {executor_id}"
            self._unallocated.setdefault(block.stream_id, []).append(
                ReceivedBlock(
                    block.block_id, block.records, executor_id, block.replica, block.wal_path
                )
            )
            return ""

    def abandon_block(self, executor_id: str, block: BlockAbandoned) -> None:
        """The receiver did not acknowledge the block's records (no answer came in time), so
        its source sends them again: forget its log file unless the block is held already."""
        with self._lock:
            if block.block_id in self._tracked_ids(block.stream_id):
                log.warning(
                    "block %s from %s was abandoned after it was recorded: its records may be "
                    "processed twice (dropped again with message ids)",
                    block.block_id,
                    executor_id,
                )
                return
            self._delete_logged(block.wal_path)

    def _delete_logged(self, wal_path: str | None) -> None:
        """Delete a refused block's log file (only inside this job's log directory)."""
        if wal_path is None or self.wal_dir is None:
            return
        root = os.path.realpath(self.wal_dir)
        path = os.path.realpath(wal_path)
        if os.path.commonpath([root, path]) == root and path != root:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    def add_bad_records(self, message: BadRecords) -> None:
        """Count what a receiver could not store as it came; its detail is the last error."""
        with self._lock:
            info = self._receivers.get(message.stream_id)
            if info is None:
                return
            info.bad_records[message.reason] = (
                info.bad_records.get(message.reason, 0) + message.records
            )
            info.last_error = f"{message.records} {message.reason}: {message.detail}"

    def update_status(self, executor_id: str, status: ReceiverStatus) -> None:
        """A receiver's news; none from a receiver the stream left (one a previous driver
        started, stopping now that its blocks are refused)."""
        with self._lock:
            info = self._receivers.get(status.stream_id)
            if info is None or info.executor_id not in (executor_id, None):
                return
            info.state = status.state
            if status.state == "error":
                info.last_error = status.message
            self._lock.notify_all()
        for listener in self.status_listeners:
            listener(executor_id, status)

    def allocate_blocks_to_batch(self, batch_time: int) -> None:
        """A batch replayed after recovery keeps the blocks it had before the crash."""
        with self._lock:
            if batch_time in self._allocated:
                return
            self._allocated[batch_time] = {sid: blocks for sid, blocks in self._unallocated.items()}
            self._unallocated = {sid: [] for sid in self._unallocated}

    def blocks_of_batch(self, batch_time: int, stream_id: int) -> list[ReceivedBlock]:
        with self._lock:
            return list(self._allocated.get(batch_time, {}).get(stream_id, []))

    def unallocated_records(self) -> int:
        with self._lock:
            return sum(b.records for blocks in self._unallocated.values() for b in blocks)

    def has_unallocated_blocks(self) -> bool:
        with self._lock:
            return any(self._unallocated.values())

    def forget_batches(self, before: int) -> list[ReceivedBlock]:
        """Drop allocations of batches older than `before`; returns their blocks."""
        with self._lock:
            old = [t for t in self._allocated if t < before]
            return [b for t in old for blocks in self._allocated.pop(t).values() for b in blocks]

    def checkpoint_state(self) -> dict[str, Any]:
        """Blocks in the write-ahead log: allocated per batch, and not yet allocated."""
        with self._lock:
            return {
                "allocated": {
                    t: {sid: [b for b in blocks if b.wal_path] for sid, blocks in streams.items()}
                    for t, streams in self._allocated.items()
                },
                "unallocated": {
                    sid: [b for b in blocks if b.wal_path]
                    for sid, blocks in self._unallocated.items()
                },
            }

    def _tracked_ids(self, stream_id: int) -> set[str]:
        batches = [*self._allocated.values(), self._unallocated]
        return {b.block_id for streams in batches for b in streams.get(stream_id, [])}

    def adopt_orphans(self, written_by: str | None = None) -> int:
        """Blocks in the write-ahead log that no checkpoint mentions (the driver died between
        the log write and the block report) become unallocated again: none is lost. With
        `written_by`, only that executor's blocks (it was lost before reporting them)."""
        if self.wal_dir is None or not os.path.isdir(self.wal_dir):
            return 0
        with self._lock:
            known = {
                b.wal_path
                for batches in (self._allocated.values(), [self._unallocated])
                for streams in batches
                for blocks in streams.values()
                for b in blocks
            }
            adopted = 0
            for stream in sorted(os.listdir(self.wal_dir)):
                if not stream.isdigit():
                    continue
                directory = os.path.join(self.wal_dir, stream)
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    if name.startswith(".") or path in known:
                        continue
                    if written_by is not None and block_writer(name) != written_by:
                        continue
                    records = len(deserialise(read_verified(path)))
                    self._unallocated.setdefault(int(stream), []).append(
                        ReceivedBlock(name, records, "", None, path)
                    )
                    adopted += 1
        if adopted:
            log.warning("adopted %d received blocks from the write-ahead log", adopted)
        return adopted

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._allocated = {t: dict(s) for t, s in state["allocated"].items()}
            for sid, blocks in state["unallocated"].items():
                self._unallocated.setdefault(sid, [])[:0] = blocks

    def stop_receivers(self, timeout: float) -> None:
        """Stop every receiver and wait until each has flushed its last block."""
        with self._lock:
            running = [i for i in self._receivers.values() if i.executor_id is not None]
            self._running = False
        for info in running:
            assert info.executor_id is not None
            self._send(info.executor_id, StopReceiver(info.stream_id))
        with self._lock:
            self._lock.wait_for(lambda: all(i.state == "stopped" for i in running), timeout=timeout)

    def receivers(self) -> list[ReceiverInfo]:
        with self._lock:
            return list(self._receivers.values())


def block_writer(block_id: str) -> str:
    """The executor that wrote a received block: ids are input-STREAM-EXECUTOR-INCARNATION-SEQ
    (executor/receiver_supervisor.py), and an executor id may itself hold dashes."""
    _, _, rest = block_id.partition("-")
    _, _, rest = rest.partition("-")
    return rest.rsplit("-", 2)[0]
