"""Watches the running batch for progress: stalls and slow tasks, logged and counted.

A StreamingListener (batch started, output operation ended, batch ended) plus the
task scheduler's activity (tasks running, waiting, when one last ended) give an
Observation; the pure decisions in driver.stall say whether the batch is stalled
and which tasks run too long. A daemon thread checks every second (or a quarter
of the stall timeout or task threshold, if shorter) so the log says when a stall
begins and ends and each slow task once; the status document and the metrics ask `report` at the
moment they are read.
"""

from __future__ import annotations

import logging
import threading

from kubestream.core.task_scheduler import RunningTask, TaskScheduler
from kubestream.driver.stall import Observation, Stall, describe_task, find_stall, slow_tasks
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.listener import StreamingListener

log = logging.getLogger(__name__)


class ProgressMonitor(StreamingListener):
    """Register with `ssc.add_streaming_listener`, then `start()`; `stop()` ends the thread.

    stall_timeout, task_threshold : seconds (settings STALL_TIMEOUT, TASK_DURATION_THRESHOLD).
    Times are taken from the task scheduler's clock (monotonic seconds).
    """

    def __init__(self, tasks: TaskScheduler, stall_timeout: float, task_threshold: float) -> None:
        self._tasks = tasks
        self.stall_timeout = stall_timeout
        self.task_threshold = task_threshold
        self._lock = threading.Lock()
        self._batch: int | None = None
        self._progress = tasks.now()
        self._stall: Stall | None = None
        self._reported: set[int] = set()
        self.stalls_total = 0
        self.slow_tasks_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress-monitor", daemon=True)

    # --- listener hooks (job-scheduler thread) ------------------------------------------
    def on_batch_started(self, batch: BatchInfo) -> None:
        with self._lock:
            self._batch = batch.batch_time
            self._progress = self._tasks.now()

    def on_output_operation_completed(
        self, batch: BatchInfo, output_id: int, error: str | None
    ) -> None:
        with self._lock:
            self._progress = self._tasks.now()

    def on_batch_completed(self, batch: BatchInfo) -> None:
        with self._lock:
            self._batch = None
            self._progress = self._tasks.now()
        self.check()

    # --- reading ------------------------------------------------------------------------
    def observe(self) -> Observation:
        activity = self._tasks.activity()
        now = self._tasks.now()
        with self._lock:
            batch, progress = self._batch, self._progress
        if activity.last_task_end is not None:
            progress = max(progress, activity.last_task_end)
        return Observation(
            batch, now - progress, activity.running, activity.waiting, activity.executors
        )

    def report(self) -> tuple[Stall | None, tuple[RunningTask, ...]]:
        """The running batch's stall (None when it progresses) and the slow tasks now."""
        seen = self.observe()
        return find_stall(seen, self.stall_timeout), slow_tasks(seen.running, self.task_threshold)

    def check(self) -> None:
        """Log and count what began since the last check: a stall, its end, slow tasks."""
        stall, slow = self.report()
        with self._lock:
            before = self._stall
            self._stall = stall
            fresh = [t for t in slow if t.task_id not in self._reported]
            self._reported = {t.task_id for t in slow}
            self.slow_tasks_total += len(fresh)
            began = stall is not None and (before is None or before.batch_time != stall.batch_time)
            if began:
                self.stalls_total += 1
        for task in fresh:
            log.warning(
                "%s: longer than task_duration_threshold (%g s)",
                describe_task(task),
                self.task_threshold,
            )
        if began and stall is not None:
            log.error("stalled: %s (stall_timeout %g s)", stall.message, self.stall_timeout)
        elif before is not None and stall is None:
            log.warning("batch %d is no longer stalled", before.batch_time)

    # --- thread -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        every = min(1.0, self.stall_timeout / 4, self.task_threshold / 4)
        while not self._stop.wait(every):
            try:
                self.check()
            except Exception:
                log.exception("checking the running batch's progress failed")
