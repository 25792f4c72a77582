"""StreamingContext: the entry point of a streaming application.

It owns the DStream graph and the batch timer, and runs on an Engine: executor
processes under `kubestream run`/`driver`, or in-process executors when created
directly (handy in tests and notebooks, like Spark's local mode).
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kubestream.clock import Clock, SystemClock
from kubestream.core.engine import Engine
from kubestream.core.protocol import ReceiverStatus
from kubestream.errors import ConfigError, JobFailedError
from kubestream.executor.in_process import InProcessExecutors
from kubestream.executor.receiver import Receiver
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.checkpointing import Checkpointer
from kubestream.streaming.dstream import DStream, UnionDStream
from kubestream.streaming.env import StreamingEnv
from kubestream.streaming.graph import DStreamGraph
from kubestream.streaming.listener import StreamingListener
from kubestream.streaming.scheduler.job_generator import JobGenerator, first_batch_time
from kubestream.streaming.scheduler.job_scheduler import JobScheduler
from kubestream.streaming.scheduler.rate_controller import PIDRateEstimator, RateController
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker
from kubestream.streaming.sources.files import FileInputDStream
from kubestream.streaming.sources.queue import QueueInputDStream
from kubestream.streaming.sources.rate import RateInputDStream
from kubestream.streaming.sources.receiver_stream import ReceiverInputDStream
from kubestream.streaming.sources.socket import SocketTextReceiver

log = logging.getLogger(__name__)

WAL_DIR = "receivedData"


class State(enum.Enum):
    INITIALIZED = "initialized"
    ACTIVE = "active"
    STOPPED = "stopped"


class StreamingContext:
    def __init__(
        self,
        batch_interval: float = 1.0,
        checkpoint: str | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
        executors: int = 2,
        on_batch_failure: str = "continue",
        graceful_timeout: float | None = None,
        checkpoint_interval: float | None = None,
        write_ahead_log: bool = False,
        backpressure: bool = False,
        max_rate: float | None = None,
    ) -> None:
        if not 0.001 <= batch_interval <= 3600:
            raise ConfigError(
                f"batch_interval must be between 0.001 and 3600 seconds, got {batch_interval}"
            )
        if on_batch_failure not in ("continue", "stop"):
            raise ConfigError(
                f"on_batch_failure must be 'continue' or 'stop', got {on_batch_failure!r}"
            )
        if max_rate is not None and max_rate <= 0:
            raise ConfigError(f"max_rate must be greater than 0 records per second, got {max_rate}")
        self.batch_interval = batch_interval
        self.backpressure = backpressure
        self.max_rate = max_rate
        self.batch_interval_ms = round(batch_interval * 1000)
        self.checkpoint_dir: str | None = None
        self._checkpointer: Checkpointer | None = None
        self._checkpoint_interval = checkpoint_interval
        self.write_ahead_log = write_ahead_log
        self.graph_lock = threading.RLock()
        self.clock: Clock = clock or SystemClock()
        self.graceful_timeout = graceful_timeout or 10 * batch_interval
        self._own_executors = None
        if engine is None:
            engine = Engine()
            self._own_executors = InProcessExecutors(engine, executors)
        self.engine = engine
        self.graph = DStreamGraph()
        self.receiver_tracker = ReceiverTracker(engine.send, engine.task_scheduler.executors)
        self.env = StreamingEnv(engine, self.graph, self.receiver_tracker, self.batch_interval_ms)
        self.listeners: list[StreamingListener] = []
        self.state = State.INITIALIZED
        self._terminated = threading.Event()
        self._scheduler = JobScheduler(
            self.listeners,
            self._batch_completed,
            stop_on_failure=on_batch_failure == "stop",
            now=self.clock.now,
        )
        self._generator = JobGenerator(
            self.env, self.clock, self._scheduler.submit, self.graph_lock
        )
        if checkpoint:
            self.checkpoint(checkpoint)
        self.receiver_tracker.status_listeners.append(self._receiver_status)

    def checkpoint(self, directory: str) -> None:
        """Checkpoint here; a job started on a directory holding a checkpoint resumes from it."""
        self.checkpoint_dir = directory
        self._checkpointer = Checkpointer(
            self.env, self.graph_lock, directory, self._checkpoint_interval
        )
        self._generator.checkpointer = self._checkpointer

    @staticmethod
    def get_or_create(
        checkpoint_dir: str, create: Callable[[], StreamingContext]
    ) -> StreamingContext:
        """Spark's getOrCreate: `create` builds the context and its graph; when checkpoint_dir
        holds a checkpoint, start() resumes that graph's positions and state from it."""
        ssc = create()
        if ssc.checkpoint_dir != checkpoint_dir:
            ssc.checkpoint(checkpoint_dir)
        return ssc

    # --- sources --------------------------------------------------------------------------
    def queue_stream(
        self,
        batches: Iterable[Sequence[Any]],
        one_at_a_time: bool = True,
        default: Sequence[Any] | None = None,
    ) -> QueueInputDStream:
        return QueueInputDStream(self.env, batches, one_at_a_time, default)

    def text_file_stream(self, directory: str) -> DStream:
        return FileInputDStream(self.env, directory)

    def rate_stream(self, records_per_second: float) -> DStream:
        return RateInputDStream(self.env, records_per_second)

    def socket_text_stream(self, host: str, port: int) -> DStream:
        return ReceiverInputDStream(self.env, SocketTextReceiver(host, port))

    def receiver_stream(self, receiver: Receiver) -> DStream:
        return ReceiverInputDStream(self.env, receiver)

    def union(self, *streams: DStream) -> DStream:
        return UnionDStream(self.env, list(streams))

    def _batch_completed(self, info: BatchInfo) -> None:
        self._generator.batch_completed(info)

    def add_streaming_listener(self, listener: StreamingListener) -> None:
        self.listeners.append(listener)

    def _receiver_status(self, executor_id: str, status: ReceiverStatus) -> None:
        """Receiver events from the executors, to the StreamingListeners' receiver hooks."""
        for listener in list(self.listeners):
            try:
                if status.state == "started":
                    listener.on_receiver_started(status.stream_id, executor_id)
                elif status.state == "error":
                    listener.on_receiver_error(status.stream_id, status.message)
                elif status.state == "stopped":
                    listener.on_receiver_stopped(status.stream_id)
            except Exception:
                log.exception("listener %s failed on a receiver event", type(listener).__name__)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.state is not State.INITIALIZED:
            raise ConfigError(
                f"a StreamingContext can be started once; this one is {self.state.value}"
            )
        self.graph.validate()
        if self.write_ahead_log:
            if self.checkpoint_dir is None:
                raise ConfigError("the write-ahead log lives in the checkpoint directory: set one")
            self.receiver_tracker.wal_dir = os.path.join(self.checkpoint_dir, WAL_DIR)
        resume = None
        if self._checkpointer is not None:
            self._checkpointer.prepare()
            resume = self._checkpointer.recover()
        if resume is None:
            first = first_batch_time(self.clock.now() * 1000, self.batch_interval_ms)
            self.graph.zero_time = first - self.batch_interval_ms
        else:
            first = resume
        for stream in self.graph.inputs:
            stream.start()
        self._start_flow_control()
        if self.write_ahead_log:
            self.receiver_tracker.adopt_orphans()
        if self._checkpointer is not None and resume is None:
            self._checkpointer.started_fresh()
        self.engine.add_executor_listener(self.receiver_tracker)
        self.receiver_tracker.start()
        self._scheduler.start()
        self._generator.start(first)
        self.state = State.ACTIVE
        log.info(
            "streaming started: batch interval %d ms, first batch at %d",
            self.batch_interval_ms,
            first,
        )

    def _start_flow_control(self) -> None:
        """Cap each rate-limitable input at max_rate and, with backpressure, at a PID estimate."""
        for stream in self.graph.inputs:
            if not stream.supports_rate_limit:
                if self.backpressure or self.max_rate is not None:
                    log.info("input stream %d (%s) has no rate limit", stream.id, stream.describe())
                continue
            stream.max_rate = self.max_rate
            if self.backpressure:
                self.add_streaming_listener(
                    RateController(stream, PIDRateEstimator(self.batch_interval))
                )
            stream.rate_limit_changed()

    def stop(
        self, stop_engine: bool = True, graceful: bool = False, timeout: float | None = None
    ) -> None:
        """Stop; graceful processes everything already received first, within `timeout` seconds."""
        if self.state is State.STOPPED:
            return
        if self.state is State.ACTIVE:
            if graceful:
                self._stop_gracefully(timeout or self.graceful_timeout)
            self._generator.stop()
            self._scheduler.stop(
                abort=lambda: self.engine.task_scheduler.abort_all("streaming context stopped")
            )
            for stream in self.graph.inputs:
                stream.stop()
            if not graceful:
                self.receiver_tracker.stop_receivers(timeout=1.0)
        self.engine.remove_executor_listener(self.receiver_tracker)
        if stop_engine and self._own_executors is not None:
            self._own_executors.stop()
        self.state = State.STOPPED
        self._terminated.set()
        log.info("streaming stopped")

    def _stop_gracefully(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.receiver_tracker.stop_receivers(timeout=timeout / 2)
        while self.receiver_tracker.has_unallocated_blocks() and time.monotonic() < deadline:
            time.sleep(min(0.05, self.batch_interval / 4))
        self._generator.stop()
        if not self._scheduler.wait_idle(max(0.0, deadline - time.monotonic())):
            log.warning("graceful stop timed out after %.1f s with batches pending", timeout)
            return
        done = [b for b in self._scheduler.batches if b.completed]
        if done:
            self._generator.final_checkpoint(done[-1])

    def await_termination(self, timeout: float | None = None) -> bool:
        """Wait until stopped; raises if a failed batch stopped the job (policy 'stop')."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._terminated.is_set():
            if self._scheduler.failed_stop.is_set():
                self.stop(stop_engine=True)
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._terminated.wait(0.1 if remaining is None else min(0.1, remaining))
        if self._scheduler.failure is not None:
            raise JobFailedError(str(self._scheduler.failure))
        return True

    # --- batches --------------------------------------------------------------------------
    @property
    def batches(self) -> list[BatchInfo]:
        return list(self._scheduler.batches)

    def wait_for_batch(self, batch_time: int, timeout: float) -> BatchInfo:
        """Block until the batch of `batch_time` completed (for tests and kubestream.testing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for info in self.batches:
                if info.batch_time == batch_time and info.completed:
                    return info
            time.sleep(0.005)
        raise TimeoutError(f"batch {batch_time} did not complete in {timeout} s")
