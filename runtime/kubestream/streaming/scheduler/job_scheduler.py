"""Runs job sets in batch order on one thread, timing each batch.

A failed output operation fails its batch visibly (logged with the user's
traceback, recorded in BatchInfo); the failure policy (settings.ON_BATCH_FAILURE)
decides what else happens. No user code (outputs, listeners) can end the thread,
so no later batch is lost to it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubestream.errors import USER_CODE_ERRORS, JobFailedError, describe_error
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.listener import StreamingListener

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    output_id: int
    run: Callable[[], None]


@dataclass(slots=True)
class JobSet:
    info: BatchInfo
    jobs: list[Job]


class JobScheduler:
    def __init__(
        self,
        listeners: list[StreamingListener],
        on_batch_done: Callable[[BatchInfo], None],
        on_batch_failure: str = "report",
        now: Callable[[], float] = time.time,
        history: int = 1000,
    ) -> None:
        self._now = now
        self._listeners = listeners
        self._on_batch_done = on_batch_done
        self._on_batch_failure = on_batch_failure
        self._queue: queue.SimpleQueue[JobSet | None] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="job-scheduler", daemon=True)
        self._history = history
        self.batches: list[BatchInfo] = []
        self.failure: JobFailedError | None = None
        self.failed_stop = threading.Event()
        self._stopping = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, job_set: JobSet) -> None:
        with self._idle:
            self._pending += 1
            self.batches.append(job_set.info)
            del self.batches[: -self._history]
        self._emit("on_batch_submitted", job_set.info)
        self._queue.put(job_set)

    def pending_batches(self) -> int:
        with self._idle:
            return self._pending

    def wait_idle(self, timeout: float | None) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, abort: Callable[[], None], timeout: float = 10.0) -> None:
        """Stop at once: `abort` cuts the running batch short. It and every queued batch stay
        unfinished, so a checkpoint keeps them pending and a restart runs them again."""
        self._stopping.set()
        self._queue.put(None)
        abort()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while (job_set := self._queue.get()) is not None:
            if not self._stopping.is_set():
                self._run_job_set(job_set)
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def _run_job_set(self, job_set: JobSet) -> None:
        info = job_set.info
        info.processing_start = self._now()
        self._emit("on_batch_started", info)
        for job in job_set.jobs:
            if self._stopping.is_set():
                break
            self._emit("on_output_operation_started", info, job.output_id)
            error: str | None = None
            try:
                job.run()
            except USER_CODE_ERRORS as exc:
                if (
                    self._stopping.is_set()
                ):  # the stop's abort: not a failure, the batch stays pending
                    break
                error = f"output operation {job.output_id} failed: {describe_error(exc)}"
                info.errors.append(error)
                log.error("batch %d: %s", info.batch_time, error, exc_info=True)
            self._emit("on_output_operation_completed", info, job.output_id, error)
        if self._stopping.is_set():
            log.warning("batch %d cut short by the stop; it stays pending", info.batch_time)
            return
        info.processing_end = self._now()
        try:
            self._on_batch_done(info)
        except Exception:
            log.exception("cleaning up after batch %d failed", info.batch_time)
        self._emit("on_batch_completed", info)
        if info.failed and self._on_batch_failure != "continue":
            if self.failure is None:
                self.failure = JobFailedError(f"batch {info.batch_time} failed: {info.errors[0]}")
            if self._on_batch_failure == "stop":
                self.failed_stop.set()

    def _emit(self, hook: str, info: BatchInfo, *args: object) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, hook)(info, *args)
            except USER_CODE_ERRORS:
                log.exception("listener %s.%s failed", type(listener).__name__, hook)
