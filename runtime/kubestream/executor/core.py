"""What an executor does, whatever carries its messages: runs tasks, keeps blocks, hosts receivers.

The networked executor process and the in-process executors used by tests both
wrap this class, so they run the same code paths.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from kubestream.core.functions import FunctionCache
from kubestream.core.input_files import InputEvent
from kubestream.core.protocol import (
    BlockRecorded,
    BlocksMigrated,
    ExecutorDraining,
    ExecutorLost,
    LaunchTask,
    MigrateBlocks,
    RemoveBlocks,
    StartReceiver,
    StopReceiver,
    TaskFinished,
    TaskState,
    ToDriver,
    ToExecutor,
    UpdateRateLimit,
)
from kubestream.core.tasks import ExecutorAddress, run_task
from kubestream.errors import USER_CODE_ERRORS, FetchFailedError
from kubestream.executor.receiver_supervisor import ReceiverSupervisor
from kubestream.logs import bind
from kubestream.storage.block_manager import BlockManager, shuffle_map_output
from kubestream.storage.state_store import StateStore, is_state_block

log = logging.getLogger(__name__)

MAX_DEFERRED_DELTAS = 4
"""Peers' state deltas left queued while tasks run; more are applied at once (memory)."""

BlockFetcher = Callable[[ExecutorAddress, list[str]], list[bytes | None]]
BlockPutter = Callable[[ExecutorAddress, str, bytes], bool]

_R = TypeVar("_R")


class ExecutorCore:
    def __init__(
        self,
        executor_id: str,
        to_driver: Callable[[ToDriver], None],
        fetcher: BlockFetcher,
        putter: BlockPutter,
        cores: int = 1,
    ) -> None:
        self.executor_id = executor_id
        self.cores = cores
        self.blocks = BlockManager()
        self.states = StateStore()
        self.functions = FunctionCache()
        self.tasks_run = 0
        self.tasks_failed = 0
        self._to_driver = to_driver
        self._fetcher = fetcher
        self._putter = putter
        self._queue: queue.SimpleQueue[LaunchTask | None] = queue.SimpleQueue()
        self._lost_peers: set[str] = set()
        self._draining_peers: set[str] = set()
        self._receivers: dict[int, ReceiverSupervisor] = {}
        self._retiring: set[ReceiverSupervisor] = set()
        """Receivers stopping: their last blocks still wait for the driver's answers."""
        self._receivers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._activity = threading.Condition()
        """Notified when a task starts or ends, or a peer's state delta arrives."""
        self._running = 0
        self._background = ThreadPoolExecutor(cores, thread_name_prefix="task-background")
        """Work a task starts and waits for later: copying a state change to a replica."""
        self._workers = [
            threading.Thread(target=self._work, name=f"task-{i}", daemon=True) for i in range(cores)
        ]
        for worker in self._workers:
            worker.start()
        threading.Thread(target=self._apply_replicas, name="state-replicas", daemon=True).start()

    def handle(self, message: ToExecutor) -> None:
        if isinstance(message, LaunchTask):
            self.functions.add(message.functions)
            self._queue.put(message)
        elif isinstance(message, RemoveBlocks):
            for prefix in message.prefixes:
                self.blocks.remove_prefix(prefix)
                self.states.remove_prefix(prefix)
            self.blocks.remove(message.block_ids)
        elif isinstance(message, StartReceiver):
            self._start_receiver(message)
        elif isinstance(message, StopReceiver):
            supervisor = self._receivers.get(message.stream_id)
            if supervisor is not None:
                self._stop_receiver(supervisor)
        elif isinstance(message, BlockRecorded):
            with self._receivers_lock:
                supervisors = [*self._receivers.values(), *self._retiring]
            for supervisor in supervisors:
                if supervisor.stream_id == message.stream_id:
                    supervisor.block_recorded(message)
        elif isinstance(message, UpdateRateLimit):
            receiver = self._receivers.get(message.stream_id)
            if receiver is not None:
                receiver.set_rate_limit(message.rate_limit)
        elif isinstance(message, ExecutorLost):
            self._lost_peers.add(message.executor_id)
        elif isinstance(message, ExecutorDraining):
            self._draining_peers.add(message.executor_id)
        elif isinstance(message, MigrateBlocks):
            threading.Thread(
                target=self._migrate, args=(message.peers,), name="migrate-blocks", daemon=True
            ).start()

    def serve_fetch(self, block_id: str) -> bytes | None:
        """A block for a peer; a state version as a full copy of it, or its changes."""
        if is_state_block(block_id):
            return self.states.serve(block_id)
        return self.blocks.get(block_id)

    def serve_put(self, block_id: str, blob: bytes) -> bool:
        """A copy from a peer; False when it is a state delta whose base is not here."""
        if is_state_block(block_id):
            accepted = self.states.receive(blob)
            with self._activity:
                self._activity.notify_all()
            return accepted
        self.blocks.put(block_id, blob)
        return True

    def _apply_replicas(self) -> None:
        """Applies the state deltas peers queued here, off their tasks' critical path: while
        no task runs, or when MAX_DEFERRED_DELTAS wait. Applying one holds the state store's
        lock and shares the GIL, which slowed the task that ran meanwhile by up to 30 ms."""
        while True:
            with self._activity:
                self._activity.wait_for(self._may_apply)
                if self._stopping.is_set():
                    return
            try:
                self.states.apply_pending()
            except Exception:
                log.exception("applying a replica's state delta failed")

    def _may_apply(self) -> bool:
        if self._stopping.is_set():
            return True
        waiting = self.states.queued_deltas()
        return waiting > 0 and (self._running == 0 or waiting >= MAX_DEFERRED_DELTAS)

    def block_stats(self) -> tuple[int, int]:
        """(blocks and state versions held, bytes of the blocks)."""
        blocks, size = self.blocks.stats()
        return blocks + self.states.stats()[0], size

    def is_lost(self, executor_id: str) -> bool:
        return executor_id in self._lost_peers

    def fetch_blocks(self, location: ExecutorAddress, block_ids: list[str]) -> list[bytes | None]:
        if self.is_lost(location.executor_id):
            raise ConnectionError(f"executor {location.executor_id} is lost")
        return self._fetcher(location, block_ids)

    def in_background(self, fn: Callable[[], _R]) -> Future[_R]:
        return self._background.submit(fn)

    def put_block(self, location: ExecutorAddress, block_id: str, blob: bytes) -> bool:
        if self.is_lost(location.executor_id):
            raise ConnectionError(f"executor {location.executor_id} is lost")
        return self._putter(location, block_id, blob)

    def replicate_block(
        self, block_id: str, blob: bytes, peers: tuple[ExecutorAddress, ...]
    ) -> str | None:
        """Copy a block to the first live peer (Spark's replicated storage); its id, or None."""
        for peer in peers:
            if (
                peer.executor_id == self.executor_id
                or self.is_lost(peer.executor_id)
                or peer.executor_id in self._draining_peers
            ):
                continue
            try:
                self.put_block(peer, block_id, blob)
            except ConnectionError:
                continue
            return peer.executor_id
        return None

    def _migrate(self, peers: tuple[ExecutorAddress, ...]) -> None:
        """Copy every block to a peer, spreading them round-robin. A map output's blocks go
        together: the driver tracks one location per map output."""
        live = [p for p in peers if not self.is_lost(p.executor_id)]
        groups: dict[object, list[str]] = {}
        for block_id in self.blocks.ids() + self.states.heads():
            groups.setdefault(shuffle_map_output(block_id) or block_id, []).append(block_id)
        moves: list[tuple[str, str]] = []
        failed: list[str] = []
        for index, block_ids in enumerate(groups.values()):
            for attempt in range(len(live)):
                peer = live[(index + attempt) % len(live)]
                try:
                    for block_id in block_ids:
                        blob = self.serve_fetch(block_id)
                        if blob is not None:
                            self.put_block(peer, block_id, blob)
                except ConnectionError:
                    continue
                moves += [(block_id, peer.executor_id) for block_id in block_ids]
                break
            else:
                failed += block_ids
        log.info("migrated %d blocks to %d peers; %d failed", len(moves), len(live), len(failed))
        self._to_driver(BlocksMigrated(tuple(moves), tuple(failed)))

    def stop(self, wait: float = 0.0) -> bool:
        """Stop receivers and task threads; a task failing from here on failed because of the
        stop, not the user. Waits up to `wait` seconds for the task threads to end, so their
        results still reach the driver; returns whether they all ended."""
        self._stopping.set()
        with self._activity:
            self._activity.notify_all()
        for supervisor in list(self._receivers.values()):
            supervisor.stop()
        self._receivers.clear()
        for _ in self._workers:
            self._queue.put(None)
        deadline = time.monotonic() + wait
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._background.shutdown(wait=False)
        return not any(worker.is_alive() for worker in self._workers)

    def driver_connected(self) -> None:
        """The executor (re)registered: its receivers repeat what the driver may not have."""
        with self._receivers_lock:
            supervisors = [*self._receivers.values(), *self._retiring]
        for supervisor in supervisors:
            supervisor.driver_connected()

    def _stop_receiver(self, supervisor: ReceiverSupervisor, announce: bool = True) -> None:
        """Stop on a thread of its own: its last blocks wait for answers that arrive on the
        thread that calls handle(). Without `announce`, the driver is not told (it has just
        started the stream's receiver here again)."""
        with self._receivers_lock:
            if self._receivers.get(supervisor.stream_id) is supervisor:
                del self._receivers[supervisor.stream_id]
            self._retiring.add(supervisor)

        def stop() -> None:
            supervisor.stop(announce)
            with self._receivers_lock:
                self._retiring.discard(supervisor)

        threading.Thread(
            target=stop, name=f"receiver-stop-{supervisor.stream_id}", daemon=True
        ).start()

    def _start_receiver(self, message: StartReceiver) -> None:
        previous = self._receivers.get(message.stream_id)
        if previous is not None:
            # Started by a driver that this one replaced: it stops, flushing what it stored.
            self._stop_receiver(previous, announce=False)
        receiver = pickle.loads(message.receiver)

        def replicate(block_id: str, blob: bytes) -> str | None:
            return self.replicate_block(block_id, blob, message.replicas)

        supervisor = ReceiverSupervisor(
            message.stream_id,
            receiver,
            self.executor_id,
            self.blocks,
            self._to_driver,
            message.block_interval,
            replicate,
            message.wal_dir,
            rate_limit=message.rate_limit,
            on_refused=self._stop_receiver,
        )
        with self._receivers_lock:
            self._receivers[message.stream_id] = supervisor
        supervisor.start()
        # A driver placing receivers listens for their blocks; the one this executor
        # registered with may not have been (a restarted driver recovering its checkpoint).
        self.driver_connected()

    def _work(self) -> None:
        while (message := self._queue.get()) is not None:
            with self._activity:
                self._running += 1
            try:
                with bind(task_id=message.task.task_id):
                    self._to_driver(self._run(message))
            finally:
                with self._activity:
                    self._running -= 1
                    self._activity.notify_all()

    def _run(self, message: LaunchTask) -> TaskFinished:
        task = message.task
        started = time.perf_counter()
        events: list[InputEvent] = []
        try:
            value = pickle.dumps(run_task(task, self, events), protocol=pickle.HIGHEST_PROTOCOL)
        except FetchFailedError as exc:
            return TaskFinished(
                task.task_id,
                TaskState.FETCH_FAILED,
                error=str(exc),
                fetch_failure=(exc.shuffle_id, exc.map_index, exc.executor_id),
                duration=time.perf_counter() - started,
            )
        except USER_CODE_ERRORS as exc:
            if self._stopping.is_set():
                log.info(
                    "task %s abandoned: executor %s is stopping", task.task_id, self.executor_id
                )
                return TaskFinished(
                    task.task_id,
                    TaskState.FAILED,
                    error=f"executor {self.executor_id} stopped during the task ({exc!r})",
                    duration=time.perf_counter() - started,
                )
            self.tasks_failed += 1
            error = traceback.format_exc()
            log.warning(
                "task %s (partition %s) failed on %s:\n%s",
                task.task_id,
                task.partition,
                self.executor_id,
                error,
            )
            return TaskFinished(
                task.task_id,
                TaskState.FAILED,
                error=error,
                duration=time.perf_counter() - started,
            )
        self.tasks_run += 1
        for event in events:
            log.warning("task %s: %s %s: %s", task.task_id, event.kind, event.path, event.detail)
        return TaskFinished(
            task.task_id,
            TaskState.FINISHED,
            value=value,
            duration=time.perf_counter() - started,
            input_events=tuple(events),
        )
