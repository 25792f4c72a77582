"""Is the running batch stalled, and which tasks run too long? Pure decisions.

A batch makes progress when it starts, when one of its tasks ends (finished or
failed) and when one of its output operations ends. `find_stall` says a batch
that made none for `timeout` seconds is stalled, and of which kind, so a person
knows where to look; `slow_tasks` picks the tasks running longer than a
threshold. The driver's ProgressMonitor (driver.progress) feeds them what it
observes and reports their answers in the status document, the metrics and the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubestream.core.task_scheduler import RunningTask

TASKS_RUNNING = "tasks_running"
TASKS_WAITING = "tasks_waiting"
NO_EXECUTORS = "no_executors"
DRIVER = "driver"
STALL_KINDS = (TASKS_RUNNING, TASKS_WAITING, NO_EXECUTORS, DRIVER)
"""Why no progress: tasks run and none ends (a user function that does not return, a
wedged executor); tasks wait for a slot that never frees (every executor draining);
tasks wait and no executor is registered; no task at all (the batch's output
operation is busy on the driver: a foreach_rdd body or a transform that blocks)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What the driver sees at one moment.

    batch_time : the batch being processed (Unix ms), None when none is.
    idle_seconds : seconds since that batch last made progress.
    running : tasks running now. waiting : tasks waiting for a slot.
    executors : executors registered.
    """

    batch_time: int | None
    idle_seconds: float
    running: tuple[RunningTask, ...] = ()
    waiting: int = 0
    executors: int = 0


@dataclass(frozen=True, slots=True)
class Stall:
    """A batch that made no progress for at least the stall timeout."""

    kind: str  # one of STALL_KINDS
    batch_time: int
    idle_seconds: float
    timeout: float
    message: str
    tasks: tuple[RunningTask, ...]  # the tasks running, longest first


def slow_tasks(running: tuple[RunningTask, ...], threshold: float) -> tuple[RunningTask, ...]:
    """Tasks that have run longer than `threshold` seconds, longest first."""
    return tuple(
        sorted((t for t in running if t.seconds > threshold), key=lambda t: (-t.seconds, t.task_id))
    )


def describe_task(task: RunningTask) -> str:
    return (
        f"task {task.task_id} (stage {task.stage_id}, partition {task.partition}) "
        f"on executor {task.executor_id} for {task.seconds:.0f} s"
    )


def find_stall(seen: Observation, timeout: float) -> Stall | None:
    """The stall of the running batch when it made no progress for `timeout` seconds."""
    if seen.batch_time is None or seen.idle_seconds < timeout:
        return None
    tasks = slow_tasks(seen.running, -1.0)
    head = f"batch {seen.batch_time} has made no progress for {seen.idle_seconds:.0f} s"
    if tasks:
        kind = TASKS_RUNNING
        why = (
            f"{len(tasks)} task(s) running and none ended; longest: {describe_task(tasks[0])} "
            "(a user function that does not return, or a wedged executor)"
        )
    elif seen.waiting and not seen.executors:
        kind = NO_EXECUTORS
        why = f"{seen.waiting} task(s) wait and no executor is registered"
    elif seen.waiting:
        kind = TASKS_WAITING
        why = (
            f"{seen.waiting} task(s) wait for a slot on {seen.executors} executor(s) "
            "(are they all draining?)"
        )
    else:
        kind = DRIVER
        why = (
            "no task runs: an output operation is busy on the driver "
            "(a foreach_rdd body or transform that does not return)"
        )
    return Stall(kind, seen.batch_time, seen.idle_seconds, timeout, f"{head}: {why}", tasks)
