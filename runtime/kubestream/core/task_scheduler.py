"""Sends tasks to executors: data locality first, retries elsewhere, executor loss survived.

A task whose input block lives on an executor waits up to `locality_wait` for a
slot there, then goes to any executor. A task that fails is retried on another
executor, up to `max_task_failures` attempts; one that was running on a lost
executor is simply run again. Decisions take `now` from an injected clock, so
tests advance time without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubestream.core.protocol import TaskFinished, TaskState
from kubestream.core.tasks import ExecutorAddress, ShuffleWrite, TaskDescription


@dataclass(frozen=True, slots=True)
class PlannedTask:
    task: TaskDescription
    preferred: tuple[str, ...] = ()


@dataclass(slots=True)
class TaskSetOutcome:
    completed: dict[int, tuple[ExecutorAddress, Any]] = field(default_factory=dict)
    fetch_failures: list[tuple[int, int, str]] = field(default_factory=list)
    error: str | None = None
    retries: int = 0


class Launcher(Protocol):
    def __call__(self, executor_id: str, task: TaskDescription) -> None: ...


@dataclass(slots=True)
class _Pending:
    planned: PlannedTask
    since: float
    failures: int = 0
    excluded: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _TaskSet:
    pending: list[_Pending]
    planned: dict[int, PlannedTask]
    outcome: TaskSetOutcome = field(default_factory=TaskSetOutcome)
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, error: str | None = None) -> None:
        if error and not self.outcome.error:
            self.outcome.error = error
        self.pending.clear()
        self.done.set()


@dataclass(slots=True)
class _Executor:
    address: ExecutorAddress
    cores: int
    running: set[int] = field(default_factory=set)
    draining: bool = False


@dataclass(slots=True)
class _Running:
    taskset: _TaskSet
    pending: _Pending
    executor_id: str
    launched: float


@dataclass(frozen=True, slots=True)
class RunningTask:
    """A task running now, as the driver's stall and slow-task reports show it."""

    task_id: int
    stage_id: int
    partition: int
    executor_id: str
    seconds: float  # since it was launched


@dataclass(frozen=True, slots=True)
class Activity:
    """What the task scheduler is doing at one moment (`activity`), for progress reports."""

    running: tuple[RunningTask, ...]
    waiting: int  # tasks waiting for a slot
    executors: int
    last_task_end: float | None  # on the scheduler's clock: when a task last finished


class TaskScheduler:
    def __init__(
        self,
        launcher: Launcher,
        clock: Callable[[], float] = time.monotonic,
        locality_wait: float = 0.1,
        max_task_failures: int = 4,
    ) -> None:
        self._launch = launcher
        self._clock = clock
        self.locality_wait = locality_wait
        self.max_task_failures = max_task_failures
        self._executors: dict[str, _Executor] = {}
        self._tasksets: list[_TaskSet] = []
        self._running: dict[int, _Running] = {}
        self._lock = threading.RLock()
        self._offer_start = 0
        self.tasks_failed = 0
        self.tasks_retried = 0
        self._last_task_end: float | None = None

    # --- executors ------------------------------------------------------------------------
    def add_executor(self, address: ExecutorAddress, cores: int) -> None:
        with self._lock:
            self._executors[address.executor_id] = _Executor(address, cores)
        self.revive()

    def remove_executor(self, executor_id: str) -> None:
        """Re-queue its running tasks and any shuffle output it alone held in running task sets."""
        now = self._clock()
        with self._lock:
            self._executors.pop(executor_id, None)
            for task_id, run in list(self._running.items()):
                if run.executor_id == executor_id:
                    del self._running[task_id]
                    if not run.taskset.done.is_set():
                        run.pending.since = now
                        run.taskset.pending.append(run.pending)
            for taskset in self._tasksets:
                lost = [
                    split
                    for split, (location, _) in taskset.outcome.completed.items()
                    if location.executor_id == executor_id
                ]
                for split in lost:
                    planned = taskset.planned[split]
                    if isinstance(planned.task.output, ShuffleWrite):
                        del taskset.outcome.completed[split]
                        taskset.pending.append(_Pending(planned, now))
        self.revive()

    def set_draining(self, executor_id: str) -> None:
        with self._lock:
            if executor_id in self._executors:
                self._executors[executor_id].draining = True

    def wait_for_planned_work(self, timeout: float) -> bool:
        """Wait until every task set submitted so far has finished (later ones do not count)."""
        with self._lock:
            planned = [t.done for t in self._tasksets]
        deadline = self._clock() + timeout
        return all(done.wait(max(0.0, deadline - self._clock())) for done in planned)

    def executors(self) -> dict[str, ExecutorAddress]:
        with self._lock:
            return {eid: e.address for eid, e in self._executors.items()}

    def running_on(self, executor_id: str) -> int:
        with self._lock:
            executor = self._executors.get(executor_id)
            return len(executor.running) if executor else 0

    def now(self) -> float:
        """The scheduler's clock (monotonic seconds by default)."""
        return self._clock()

    def activity(self) -> Activity:
        """Tasks running and waiting now, and when a task last finished (any outcome)."""
        now = self._clock()
        with self._lock:
            running = tuple(
                RunningTask(
                    task_id,
                    run.pending.planned.task.stage_id,
                    run.pending.planned.task.partition,
                    run.executor_id,
                    now - run.launched,
                )
                for task_id, run in sorted(self._running.items())
            )
            waiting = sum(len(t.pending) for t in self._tasksets)
            return Activity(running, waiting, len(self._executors), self._last_task_end)

    # --- task sets ------------------------------------------------------------------------
    def submit(self, tasks: Sequence[PlannedTask]) -> _TaskSet:
        now = self._clock()
        taskset = _TaskSet([_Pending(t, now) for t in tasks], {t.task.partition: t for t in tasks})
        if not tasks:
            taskset.done.set()
            return taskset
        with self._lock:
            self._tasksets.append(taskset)
        self.revive()
        return taskset

    def run_taskset(self, tasks: Sequence[PlannedTask]) -> TaskSetOutcome:
        taskset = self.submit(tasks)
        while not taskset.done.wait(0.5):
            self.revive()
        return taskset.outcome

    def abort_all(self, reason: str) -> None:
        with self._lock:
            for taskset in self._tasksets:
                taskset.finish(reason)
            self._tasksets.clear()

    def status_update(self, executor_id: str, update: TaskFinished) -> None:
        with self._lock:
            self._last_task_end = self._clock()
            run = self._running.pop(update.task_id, None)
            executor = self._executors.get(executor_id)
            if executor is not None:
                executor.running.discard(update.task_id)
            if run is None or run.taskset.done.is_set():
                pass
            elif update.state is TaskState.FINISHED:
                self._record_success(run, executor_id, update.value)
            elif update.state is TaskState.FETCH_FAILED and update.fetch_failure:
                run.taskset.outcome.fetch_failures.append(update.fetch_failure)
                self._finish(run.taskset)
            else:
                self._record_failure(run, executor_id, update.error or "unknown error")
        self.revive()

    def _record_success(self, run: _Running, executor_id: str, value: Any) -> None:
        taskset = run.taskset
        task = run.pending.planned.task
        address = self._address_of(executor_id, run)
        taskset.outcome.completed[task.partition] = (address, value)
        if len(taskset.outcome.completed) == len(taskset.planned):
            self._finish(taskset)

    def _address_of(self, executor_id: str, run: _Running) -> ExecutorAddress:
        executor = self._executors.get(executor_id)
        return executor.address if executor else ExecutorAddress(executor_id, "")

    def _record_failure(self, run: _Running, executor_id: str, error: str) -> None:
        self.tasks_failed += 1
        pending = run.pending
        pending.failures += 1
        pending.excluded.add(executor_id)
        task = pending.planned.task
        if pending.failures >= self.max_task_failures:
            self._finish(
                run.taskset,
                f"task {task.task_id} (stage {task.stage_id}, partition {task.partition}) "
                f"failed {pending.failures} times; last failure on executor {executor_id}:\n"
                f"{error}",
            )
            return
        self.tasks_retried += 1
        run.taskset.outcome.retries += 1
        pending.since = self._clock()
        run.taskset.pending.append(pending)

    def _finish(self, taskset: _TaskSet, error: str | None = None) -> None:
        taskset.finish(error)
        if taskset in self._tasksets:
            self._tasksets.remove(taskset)

    # --- placement ------------------------------------------------------------------------
    def revive(self) -> None:
        """Assign free slots to pending tasks and launch them (outside the lock)."""
        launches: list[tuple[str, TaskDescription]] = []
        with self._lock:
            now = self._clock()
            ids = [eid for eid, e in self._executors.items() if not e.draining]
            if ids:
                start = self._offer_start % len(ids)
                self._offer_start += 1
                ids = ids[start:] + ids[:start]
            progress = True
            while progress:
                progress = False
                for eid in ids:
                    executor = self._executors[eid]
                    if len(executor.running) >= executor.cores:
                        continue
                    picked = self._pick(eid, now, ids)
                    if picked is None:
                        continue
                    taskset, pending = picked
                    task = pending.planned.task
                    taskset.pending.remove(pending)
                    executor.running.add(task.task_id)
                    self._running[task.task_id] = _Running(taskset, pending, eid, now)
                    launches.append((eid, task))
                    progress = True
        for eid, task in launches:
            self._launch(eid, task)

    def _pick(self, eid: str, now: float, alive: list[str]) -> tuple[_TaskSet, _Pending] | None:
        fallback: tuple[_TaskSet, _Pending] | None = None
        waited: tuple[_TaskSet, _Pending] | None = None
        for taskset in self._tasksets:
            for pending in taskset.pending:
                if eid in pending.excluded and any(e not in pending.excluded for e in alive):
                    continue
                live_pref = [e for e in pending.planned.preferred if e in alive]
                if eid in live_pref:
                    return taskset, pending
                if not live_pref:
                    fallback = fallback or (taskset, pending)
                elif now - pending.since >= self.locality_wait:
                    waited = waited or (taskset, pending)
        return fallback or waited

    def next_deadline(self) -> float | None:
        """When a task waiting for locality may go elsewhere, so the caller knows when to revive."""
        with self._lock:
            waits = [
                p.since + self.locality_wait
                for ts in self._tasksets
                for p in ts.pending
                if p.planned.preferred
            ]
        return min(waits) if waits else None
