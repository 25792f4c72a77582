"""JobGenerator (Spark's): one job set per batch time, checkpoints, and cleanup after each batch.

On a timer aligned to the batch interval it allocates received blocks to the
batch, asks the graph for the batch's jobs, writes the metadata checkpoint and
hands the job set to the JobScheduler. Every batch time it reaches becomes a
batch: when generating the jobs fails (a transform function raising, on the
driver), the batch is handed over with no jobs and the error recorded, so it
fails like any other batch (status, listeners, metrics, failure policy).
When the scheduler reports a batch done, it checkpoints again (state too when
due) and drops what no later batch needs: old RDDs with the shuffles and blocks
beneath them, old received blocks and their write-ahead log files. A checkpoint
that cannot be written fails its batch, naming the file and the error; the job
runs on and cleans up all the same. Called by StreamingContext, which starts and
stops it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable

from kubestream.clock import Clock
from kubestream.core.rdd import lineage
from kubestream.errors import USER_CODE_ERRORS, describe_error
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.checkpointing import Checkpointer
from kubestream.streaming.env import StreamingEnv
from kubestream.streaming.scheduler.job_scheduler import JobSet

log = logging.getLogger(__name__)


def first_batch_time(now_ms: float, interval_ms: int) -> int:
    """The first interval boundary strictly after now: batch times are multiples of the interval."""
    return (math.floor(now_ms / interval_ms) + 1) * interval_ms


class JobGenerator:
    def __init__(
        self,
        env: StreamingEnv,
        clock: Clock,
        submit: Callable[[JobSet], None],
        graph_lock: threading.RLock,
    ) -> None:
        self._env = env
        self._clock = clock
        self._submit = submit
        self.graph_lock = graph_lock
        self.checkpointer: Checkpointer | None = None
        self._pending: set[int] = set()
        self._last_completed: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-generator", daemon=True)
        self.next_time: int = 0
        self.last_generated: int | None = None

    def start(self, first_time: int) -> None:
        self.next_time = first_time
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def pending_batches(self) -> list[int]:
        """Batch times generated and not yet completed, oldest first."""
        with self.graph_lock:
            return sorted(self._pending)

    def _run(self) -> None:
        interval_ms = self._env.batch_interval_ms
        while self._clock.wait_until(self.next_time / 1000, self._stop):
            batch_time = self.next_time
            self.generate_jobs(batch_time)
            self.last_generated = batch_time
            self.next_time += interval_ms

    def generate_jobs(self, batch_time: int) -> None:
        """Generate and submit the batch of `batch_time` (ms); a failure fails the batch."""
        env = self._env
        errors: list[str] = []
        jobs = []
        try:
            env.receiver_tracker.allocate_blocks_to_batch(batch_time)
            with self.graph_lock:
                jobs = env.graph.generate_jobs(batch_time)
        except USER_CODE_ERRORS as exc:  # Spark's "Error generating jobs for time ..."
            errors.append(f"error generating jobs for time {batch_time}: {describe_error(exc)}")
            log.error("batch %d: %s", batch_time, errors[-1], exc_info=True)
        with self.graph_lock:
            per_stream = {s.id: s.records_per_batch.get(batch_time, 0) for s in env.graph.inputs}
            self._pending.add(batch_time)
            if self.checkpointer is not None:
                try:
                    self.checkpointer.batch_generated(
                        batch_time, self._last_completed, sorted(self._pending)
                    )
                except Exception as exc:  # logged by the checkpointer's health, rate-limited
                    errors.append(f"metadata checkpoint at {batch_time}: {describe_error(exc)}")
        info = BatchInfo(
            batch_time,
            submission_time=self._clock.now(),
            num_records=sum(per_stream.values()),
            records_per_stream=per_stream,
            errors=errors,
            output_operations=len(jobs),
        )
        self._submit(JobSet(info, jobs))

    def batch_completed(self, info: BatchInfo) -> None:
        """Spark's onBatchCompletion: checkpoint, then clear what no later batch reads."""
        env = self._env
        with self.graph_lock:
            self._pending.discard(info.batch_time)
            self._last_completed = info.batch_time
            pending = sorted(self._pending)
        if self.checkpointer is not None:
            try:
                self.checkpointer.batch_completed(info, pending)
            except Exception as exc:  # logged by the checkpointer's health; cleanup goes on
                info.errors.append(f"checkpoint at {info.batch_time}: {describe_error(exc)}")
        for stream in env.graph.inputs_read_at(info.batch_time):
            stream.batch_completed(info)
        with self.graph_lock:
            dropped = env.graph.clear_metadata(info.batch_time)
            gone = lineage(dropped)
            live = lineage(rdd for s in env.graph.streams for rdd in s.generated.values())
        env.engine.forget_shuffles(sorted(gone.shuffles - live.shuffles))
        env.engine.remove_blocks(sorted(gone.block_prefixes - live.block_prefixes))
        keep = max(env.graph.input_remember_ms(), env.batch_interval_ms)
        if self.checkpointer is not None:
            keep = max(keep, self.checkpointer.history_ms)
        old_blocks = env.receiver_tracker.forget_batches(info.batch_time - keep + 1)
        env.engine.remove_blocks(block_ids=[b.block_id for b in old_blocks])
        for block in old_blocks:
            if block.wal_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(block.wal_path)

    def final_checkpoint(self, last: BatchInfo) -> None:
        """After a graceful stop: metadata and state as of the last completed batch."""
        if self.checkpointer is not None:
            self.checkpointer.batch_completed(last, self.pending_batches(), force_data=True)
