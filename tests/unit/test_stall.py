"""Stalls and slow tasks: the pure decisions, and the driver's monitor over a real TaskScheduler.

The monitor test drives a real TaskScheduler on a manual clock with a launcher that
only records launches (no executor: the test reports the task's end itself).
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.protocol import TaskFinished, TaskState
from kubestream.core.task_scheduler import PlannedTask, RunningTask, TaskScheduler
from kubestream.core.tasks import EmptySource, ExecutorAddress, ResultOutput, TaskDescription
from kubestream.driver.progress import ProgressMonitor
from kubestream.driver.stall import (
    DRIVER,
    NO_EXECUTORS,
    STALL_KINDS,
    TASKS_RUNNING,
    TASKS_WAITING,
    Observation,
    find_stall,
    slow_tasks,
)
from kubestream.driver.status import build_status
from kubestream.streaming.batch import BatchInfo

running_task = st.builds(
    RunningTask,
    task_id=st.integers(1, 10_000),
    stage_id=st.integers(1, 100),
    partition=st.integers(0, 16),
    executor_id=st.sampled_from(["exec-1", "exec-2"]),
    seconds=st.floats(0, 1000, allow_nan=False),
)
observation = st.builds(
    Observation,
    batch_time=st.one_of(st.none(), st.integers(0, 10**13)),
    idle_seconds=st.floats(0, 10_000, allow_nan=False),
    running=st.lists(running_task, max_size=5, unique_by=lambda t: t.task_id).map(tuple),
    waiting=st.integers(0, 20),
    executors=st.integers(0, 5),
)


@given(seen=observation, timeout=st.floats(0.1, 5000, allow_nan=False))
def test_a_batch_is_stalled_exactly_when_it_made_no_progress_for_the_timeout(
    seen: Observation, timeout: float
) -> None:
    stall = find_stall(seen, timeout)
    assert (stall is not None) == (seen.batch_time is not None and seen.idle_seconds >= timeout)
    if stall is None:
        return
    assert stall.kind in STALL_KINDS
    assert stall.batch_time == seen.batch_time and stall.idle_seconds == seen.idle_seconds
    assert str(seen.batch_time) in stall.message
    expected = (
        TASKS_RUNNING
        if seen.running
        else NO_EXECUTORS
        if seen.waiting and not seen.executors
        else TASKS_WAITING
        if seen.waiting
        else DRIVER
    )
    assert stall.kind == expected
    assert sorted(t.task_id for t in stall.tasks) == sorted(t.task_id for t in seen.running)
    if stall.tasks:
        assert stall.tasks[0].seconds == max(t.seconds for t in seen.running)
        assert f"task {stall.tasks[0].task_id} " in stall.message


@given(
    tasks=st.lists(running_task, max_size=8, unique_by=lambda t: t.task_id).map(tuple),
    threshold=st.floats(0, 1000, allow_nan=False),
)
def test_slow_tasks_are_those_over_the_threshold_longest_first(
    tasks: tuple[RunningTask, ...], threshold: float
) -> None:
    slow = slow_tasks(tasks, threshold)
    assert {t.task_id for t in slow} == {t.task_id for t in tasks if t.seconds > threshold}
    assert [t.seconds for t in slow] == sorted((t.seconds for t in slow), reverse=True)


class ManualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _task(task_id: int) -> PlannedTask:
    return PlannedTask(TaskDescription(task_id, 7, task_id, EmptySource(), (), ResultOutput("f")))


def test_the_monitor_reports_a_stall_and_a_slow_task_once_and_clears_on_progress(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualTime()
    launched: list[int] = []
    tasks = TaskScheduler(lambda eid, task: launched.append(task.task_id), clock=clock)
    tasks.add_executor(ExecutorAddress("exec-1", "tcp://a:1"), cores=2)
    monitor = ProgressMonitor(tasks, stall_timeout=10.0, task_threshold=5.0)
    batch = BatchInfo(1_000, 1.0, processing_start=1.0)
    monitor.on_batch_started(batch)
    tasks.submit([_task(1), _task(2)])
    assert launched == [1, 2]
    caplog.set_level(logging.WARNING, "kubestream.driver.progress")

    clock.now += 4
    tasks.status_update("exec-1", TaskFinished(1, TaskState.FINISHED, value=None))
    clock.now += 6  # task 2 has run 10 s; the last progress was 6 s ago
    monitor.check()
    stall, slow = monitor.report()
    assert stall is None
    assert [t.task_id for t in slow] == [2]
    clock.now += 4  # 10 s without progress
    monitor.check()
    monitor.check()
    stall, slow = monitor.report()
    assert stall is not None and stall.kind == TASKS_RUNNING and stall.batch_time == 1_000
    assert [t.task_id for t in stall.tasks] == [2] and stall.tasks[0].seconds == 14
    assert (monitor.stalls_total, monitor.slow_tasks_total) == (1, 1)
    doc = build_status(
        job="j",
        state="active",
        batch_interval=1.0,
        batches=[batch],
        executors=[],
        receivers=[],
        now=2000.0,
        stall=stall,
        slow_tasks=slow,
    )
    assert doc["stall"]["kind"] == TASKS_RUNNING
    assert doc["stall"]["since"] == 2000.0 - 10.0
    assert doc["stall"]["tasks"][0]["executor_id"] == "exec-1"
    assert doc["slow_tasks"] == [
        {
            "task_id": 2,
            "stage_id": 7,
            "partition": 2,
            "executor_id": "exec-1",
            "running_seconds": 14.0,
        }
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("longer than task_duration_threshold" in m for m in messages) == 1
    assert sum(m.startswith("stalled: batch 1000") for m in messages) == 1

    tasks.status_update("exec-1", TaskFinished(2, TaskState.FINISHED, value=None))
    monitor.check()
    assert monitor.report() == (None, ())
    assert "batch 1000 is no longer stalled" in caplog.records[-1].getMessage()
    monitor.on_batch_completed(batch)
    clock.now += 1000  # no batch running: nothing to stall
    assert monitor.report() == (None, ())
