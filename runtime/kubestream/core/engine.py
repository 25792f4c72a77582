"""The driver's execution engine (Spark's SparkContext): executors, schedulers, function shipping.

Executors attach through a `send` callable, so the same engine drives executor
processes over ZeroMQ and in-process executors in tests.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from kubestream.core.dag_scheduler import DAGScheduler
from kubestream.core.functions import FunctionRegistry
from kubestream.core.input_files import InputEvent
from kubestream.core.map_output_tracker import MapOutputTracker
from kubestream.core.protocol import (
    BlocksMigrated,
    ExecutorDraining,
    ExecutorLost,
    Heartbeat,
    LaunchTask,
    MigrateBlocks,
    ReceiverMessage,
    RemoveBlocks,
    TaskFinished,
    TaskState,
    ToDriver,
    ToExecutor,
)
from kubestream.core.rdd import RDD, SourceRDD, empty_sources, parallel_sources, range_sources
from kubestream.core.task_scheduler import TaskScheduler
from kubestream.core.tasks import ExecutorAddress, TaskDescription, UpdatedAndRead
from kubestream.errors import USER_CODE_ERRORS
from kubestream.storage.block_manager import shuffle_map_output

log = logging.getLogger(__name__)

ExecutorLink = Callable[[ToExecutor], None]


class ExecutorListener(Protocol):
    """What the streaming layer's receiver tracker hears from the engine.

    The engine knows executors and routes their messages; receivers and the blocks
    they store belong to the streaming layer, which registers here while it runs.
    """

    def executor_added(self, executor_id: str) -> None: ...

    def executor_lost(self, executor_id: str) -> None: ...

    def blocks_moved(self, executor_id: str, moves: dict[str, str]) -> None:
        """Blocks the executor copied away while draining: block id -> new holder."""

    def receiver_message(self, executor_id: str, message: ReceiverMessage) -> None: ...


class Engine:
    def __init__(
        self,
        default_parallelism: int | None = None,
        locality_wait: float = 0.1,
        max_task_failures: int = 4,
    ) -> None:
        self._parallelism = default_parallelism
        self.functions = FunctionRegistry()
        self.map_outputs = MapOutputTracker()
        self.task_scheduler = TaskScheduler(
            self._launch, locality_wait=locality_wait, max_task_failures=max_task_failures
        )
        self.dag_scheduler = DAGScheduler(self.functions, self.task_scheduler, self.map_outputs)
        self._executor_listeners: list[ExecutorListener] = []
        self._links: dict[str, ExecutorLink] = {}
        self._known: dict[str, set[str]] = {}
        self._cores: dict[str, int] = {}
        self._block_stats: dict[str, tuple[int, int]] = {}
        self._moved: dict[tuple[str, str], ExecutorAddress] = {}
        self._migrations: dict[str, BlocksMigrated] = {}
        self.draining: set[str] = set()
        self._lock = threading.RLock()
        self._executors_changed = threading.Condition(self._lock)
        self._rdd_ids = itertools.count(1)
        self._shuffle_ids = itertools.count(1)
        self.listeners: list[Callable[[str, str], None]] = []
        self.input_listeners: list[Callable[[InputEvent], None]] = []
        """Told what finished tasks met in their input (InputEvent), on the transport thread."""

    # --- ids and parallelism --------------------------------------------------------------
    def new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    def new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)

    @property
    def default_parallelism(self) -> int:
        if self._parallelism:
            return self._parallelism
        with self._lock:
            return max(2, sum(self._cores.values()))

    # --- executors ------------------------------------------------------------------------
    def attach_executor(self, address: ExecutorAddress, cores: int, link: ExecutorLink) -> None:
        with self._lock:
            if address.executor_id in self._links:
                self._detach(address.executor_id, "re-registered")
            self._links[address.executor_id] = link
            self._known[address.executor_id] = set()
            self._cores[address.executor_id] = cores
            self._executors_changed.notify_all()
        log.info("executor %s registered at %s", address.executor_id, address.address)
        self.task_scheduler.add_executor(address, cores)
        for listener in list(self._executor_listeners):
            listener.executor_added(address.executor_id)
        self._notify("executor_added", address.executor_id)

    def detach_executor(self, executor_id: str, reason: str) -> None:
        with self._lock:
            if executor_id not in self._links:
                return
            self._detach(executor_id, reason)
        self.task_scheduler.remove_executor(executor_id)
        for listener in list(self._executor_listeners):
            listener.executor_lost(executor_id)
        for other in self.executor_ids():
            self.send(other, ExecutorLost(executor_id))
        self._notify("executor_removed", executor_id)

    def _detach(self, executor_id: str, reason: str) -> None:
        log.warning("executor %s removed: %s", executor_id, reason)
        del self._links[executor_id]
        self._known.pop(executor_id, None)
        self._cores.pop(executor_id, None)
        self._block_stats.pop(executor_id, None)
        self.draining.discard(executor_id)
        self.map_outputs.remove_executor(executor_id)
        self._executors_changed.notify_all()

    # --- decommissioning ------------------------------------------------------------------
    def start_draining(self, executor_id: str) -> None:
        """No more tasks, receivers or replicas go to the executor."""
        with self._lock:
            if executor_id not in self._links:
                raise KeyError(executor_id)
            self.draining.add(executor_id)
        self.task_scheduler.set_draining(executor_id)
        for other in self.executor_ids():
            if other != executor_id:
                self.send(other, ExecutorDraining(executor_id))

    def migrate_blocks(self, executor_id: str, timeout: float) -> BlocksMigrated:
        """Have the executor copy its blocks to the others, then look for them there."""
        peers = tuple(
            address
            for eid, address in self.task_scheduler.executors().items()
            if eid != executor_id and eid not in self.draining
        )
        with self._lock:
            self._migrations.pop(executor_id, None)
        self.send(executor_id, MigrateBlocks(peers))
        with self._lock:
            if not self._executors_changed.wait_for(
                lambda: executor_id in self._migrations, timeout
            ):
                raise TimeoutError(
                    f"executor {executor_id} did not migrate its blocks in {timeout} s"
                )
            result = self._migrations.pop(executor_id)
            targets = {a.executor_id: a for a in peers}
            for block_id, target in result.moves:
                self._moved[(block_id, executor_id)] = targets[target]
        for block_id, target in result.moves:
            map_output = shuffle_map_output(block_id)
            if map_output is not None:
                self.map_outputs.move_output(*map_output, executor_id, targets[target])
        for listener in list(self._executor_listeners):
            listener.blocks_moved(executor_id, dict(result.moves))
        return result

    def locate(
        self, block_id: str, locations: tuple[ExecutorAddress, ...]
    ) -> tuple[ExecutorAddress, ...]:
        """Where a block is now: a decommissioned holder is replaced by the peer it copied to."""
        with self._lock:
            if not self._moved:
                return locations
            current = (self._moved.get((block_id, loc.executor_id), loc) for loc in locations)
            return tuple(dict.fromkeys(current))

    def add_executor_listener(self, listener: ExecutorListener) -> None:
        self._executor_listeners.append(listener)

    def remove_executor_listener(self, listener: ExecutorListener) -> None:
        if listener in self._executor_listeners:
            self._executor_listeners.remove(listener)

    def executor_ids(self) -> list[str]:
        with self._lock:
            return list(self._links)

    def block_stats(self, executor_id: str) -> tuple[int, int] | None:
        """(blocks, bytes) the executor held at its last heartbeat; None before the first."""
        with self._lock:
            return self._block_stats.get(executor_id)

    def wait_for_executors(self, count: int, timeout: float) -> bool:
        with self._lock:
            return self._executors_changed.wait_for(lambda: len(self._links) >= count, timeout)

    def send(self, executor_id: str, message: ToExecutor) -> None:
        with self._lock:
            link = self._links.get(executor_id)
        if link is not None:
            link(message)

    def broadcast(self, message: ToExecutor) -> None:
        for executor_id in self.executor_ids():
            self.send(executor_id, message)

    def _notify(self, event: str, executor_id: str) -> None:
        for listener in self.listeners:
            listener(event, executor_id)

    def _launch(self, executor_id: str, task: TaskDescription) -> None:
        with self._lock:
            known = self._known.get(executor_id)
            if known is None:
                return
            missing = [r for r in task.function_refs() if r not in known]
            known.update(missing)
        blobs = {ref: self.functions.blob(ref) for ref in missing}
        self.send(executor_id, LaunchTask(task, blobs))

    def handle(self, executor_id: str, message: ToDriver) -> None:
        """A message from an executor (called on the transport's thread)."""
        if isinstance(message, TaskFinished):
            if message.state is TaskState.FINISHED:
                message = _unpickled_result(message)
            if message.state is TaskState.FINISHED:
                for event in message.input_events:
                    for input_listener in list(self.input_listeners):
                        input_listener(event)
            self.task_scheduler.status_update(executor_id, message)
        elif isinstance(message, ReceiverMessage):
            for listener in list(self._executor_listeners):
                listener.receiver_message(executor_id, message)
        elif isinstance(message, BlocksMigrated):
            with self._lock:
                self._migrations[executor_id] = message
                self._executors_changed.notify_all()
        elif isinstance(message, Heartbeat):
            with self._lock:
                if executor_id in self._links:
                    self._block_stats[executor_id] = (message.blocks, message.block_bytes)

    # --- jobs -----------------------------------------------------------------------------
    def run_job(
        self,
        rdd: RDD,
        result_fn: Callable[[int, Any], Any],
        partitions: Iterable[int] | None = None,
    ) -> list[Any]:
        return self.dag_scheduler.run_job(rdd, result_fn, partitions)

    def remove_blocks(self, prefixes: Sequence[str] = (), block_ids: Sequence[str] = ()) -> None:
        """Drop blocks everywhere: whole families by prefix, single blocks by exact id."""
        if prefixes or block_ids:
            self.broadcast(RemoveBlocks(tuple(prefixes), tuple(block_ids)))
        if self._moved:
            ids, starts = set(block_ids), tuple(prefixes)
            with self._lock:
                for key in [k for k in self._moved if k[0] in ids or k[0].startswith(starts)]:
                    del self._moved[key]

    def forget_shuffles(self, shuffle_ids: list[int]) -> None:
        self.map_outputs.unregister_shuffles(shuffle_ids)
        self.remove_blocks([f"shuffle_{s}_" for s in shuffle_ids])

    def executor_address(self, executor_id: str) -> ExecutorAddress | None:
        return self.task_scheduler.executors().get(executor_id)

    # --- RDD factories --------------------------------------------------------------------
    def parallelize(self, records: Sequence[Any], slices: int | None = None) -> RDD:
        return SourceRDD(self, parallel_sources(list(records), slices or self.default_parallelism))

    def range(self, start: int, stop: int, slices: int | None = None) -> RDD:
        return SourceRDD(self, range_sources(start, stop, slices or self.default_parallelism))

    def empty_rdd(self) -> RDD:
        return SourceRDD(self, empty_sources())


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def _unpickled_result(message: TaskFinished) -> TaskFinished:
    """The task's value unpickled as it arrives, while the stage's other tasks still run. A
    value the driver cannot unpickle (a class from a module only the executors have) fails
    the task with the reason, and the job once its attempts are spent (Spark's
    TaskResultGetter aborts the stage at once); raised here, it reached the transport's
    thread, which logs it and leaves the job waiting."""
    try:
        value = pickle.loads(message.value) if isinstance(message.value, bytes) else message.value
    except USER_CODE_ERRORS:
        return dataclasses.replace(
            message,
            state=TaskState.FAILED,
            value=None,
            error="the task's result cannot be unpickled on the driver; install the modules "
            f"its values come from on the driver too:\n{traceback.format_exc()}",
        )
    if isinstance(value, UpdatedAndRead):
        value = value.unpickled()
    return dataclasses.replace(message, value=value)
