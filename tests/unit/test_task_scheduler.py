"""Placement decisions of the TaskScheduler, with a clock the test moves by hand."""

from __future__ import annotations

from kubestream.core.protocol import TaskFinished, TaskState
from kubestream.core.task_scheduler import PlannedTask, TaskScheduler
from kubestream.core.tasks import (
    EmptySource,
    ExecutorAddress,
    ResultOutput,
    ShuffleWrite,
    TaskDescription,
)


class Recorder:
    def __init__(self) -> None:
        self.launched: list[tuple[str, int]] = []

    def __call__(self, executor_id: str, task: TaskDescription) -> None:
        self.launched.append((executor_id, task.task_id))


def task(task_id: int, partition: int = 0, shuffle: bool = False) -> TaskDescription:
    output = ShuffleWrite(1, partition, 2, None, None) if shuffle else ResultOutput("f")
    return TaskDescription(task_id, 1, partition, EmptySource(), (), output)


def scheduler(
    now: list[float], executors: int = 2, **kwargs: float
) -> tuple[TaskScheduler, Recorder]:
    launcher = Recorder()
    ts = TaskScheduler(launcher, clock=lambda: now[0], **kwargs)  # type: ignore[arg-type]
    for i in range(1, executors + 1):
        ts.add_executor(ExecutorAddress(f"e{i}", f"tcp://e{i}"), cores=1)
    return ts, launcher


def finish(
    ts: TaskScheduler, executor: str, task_id: int, state: TaskState = TaskState.FINISHED
) -> None:
    ts.status_update(executor, TaskFinished(task_id, state, value=task_id, error="boom"))


def test_task_waits_for_its_preferred_executor_then_goes_elsewhere() -> None:
    now = [0.0]
    ts, launched = scheduler(now, locality_wait=0.5)
    ts.submit([PlannedTask(task(1, 0), ("e1",)), PlannedTask(task(2, 1), ("e1",))])
    assert launched.launched == [("e1", 1)]
    now[0] = 0.4
    ts.revive()
    assert launched.launched == [("e1", 1)]
    now[0] = 0.6
    ts.revive()
    assert launched.launched == [("e1", 1), ("e2", 2)]


def test_task_without_live_preference_runs_at_once() -> None:
    now = [0.0]
    ts, launched = scheduler(now, locality_wait=10)
    ts.submit([PlannedTask(task(1), ("gone",))])
    assert len(launched.launched) == 1


def test_failed_task_is_retried_on_another_executor_then_fails_the_set() -> None:
    now = [0.0]
    ts, launched = scheduler(now, max_task_failures=2)
    taskset = ts.submit([PlannedTask(task(1))])
    first = launched.launched[-1][0]
    finish(ts, first, 1, TaskState.FAILED)
    second = launched.launched[-1][0]
    assert second != first
    assert not taskset.done.is_set()
    finish(ts, second, 1, TaskState.FAILED)
    assert taskset.done.is_set()
    assert taskset.outcome.error is not None and "failed 2 times" in taskset.outcome.error
    assert "boom" in taskset.outcome.error


def test_running_task_of_a_lost_executor_runs_again_elsewhere() -> None:
    now = [0.0]
    ts, launched = scheduler(now)
    taskset = ts.submit([PlannedTask(task(1, 0)), PlannedTask(task(2, 1))])
    on = dict((tid, eid) for eid, tid in launched.launched)
    ts.remove_executor(on[1])
    survivor = on[2]
    finish(ts, survivor, 2)
    assert launched.launched[-1] == (survivor, 1)
    finish(ts, survivor, 1)
    assert taskset.done.is_set() and taskset.outcome.error is None
    assert sorted(taskset.outcome.completed) == [0, 1]


def test_shuffle_output_of_a_lost_executor_is_recomputed() -> None:
    now = [0.0]
    ts, launched = scheduler(now)
    taskset = ts.submit(
        [PlannedTask(task(1, 0, shuffle=True)), PlannedTask(task(2, 1, shuffle=True))]
    )
    on = dict((tid, eid) for eid, tid in launched.launched)
    finish(ts, on[1], 1)
    ts.remove_executor(on[1])
    assert launched.launched[-1] == (on[2], 1) or not taskset.done.is_set()
    finish(ts, on[2], 2)
    finish(ts, on[2], 1)
    assert taskset.done.is_set()
    assert all(loc.executor_id == on[2] for loc, _ in taskset.outcome.completed.values())


def test_fetch_failure_ends_the_task_set_for_the_dag_to_resubmit() -> None:
    now = [0.0]
    ts, launched = scheduler(now)
    taskset = ts.submit([PlannedTask(task(1))])
    ts.status_update(
        launched.launched[0][0],
        TaskFinished(1, TaskState.FETCH_FAILED, fetch_failure=(7, 0, "e9")),
    )
    assert taskset.done.is_set()
    assert taskset.outcome.fetch_failures == [(7, 0, "e9")]
