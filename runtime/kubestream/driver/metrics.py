"""The driver's Prometheus metrics.

Batch metrics come from a StreamingListener (`DriverMetrics`); what the engine and
the receiver tracker know right now (executors, receivers, task failures) is read
when Prometheus scrapes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from kubestream.core.engine import Engine
from kubestream.driver.progress import ProgressMonitor
from kubestream.metrics import PREFIX, RECORDS_BUCKETS, SECONDS_BUCKETS
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.checkpointing import CheckpointHealth
from kubestream.streaming.graph import DStreamGraph
from kubestream.streaming.listener import StreamingListener
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker


class DriverMetrics(StreamingListener):
    """Batch metrics, updated as batches move; register with `ssc.add_streaming_listener`."""

    def __init__(
        self,
        registry: CollectorRegistry,
        batch_interval: float,
        engine: Engine,
        receiver_tracker: ReceiverTracker,
    ) -> None:
        self._interval = batch_interval
        self._lock = threading.Lock()
        self._pending = 0
        self._running = 0

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(PREFIX + name, doc, buckets=buckets, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=registry)

        self.processing_time = histogram(
            "batch_processing_seconds", "Time a batch's jobs took to run.", SECONDS_BUCKETS
        )
        self.scheduling_delay = histogram(
            "batch_scheduling_delay_seconds",
            "Time a batch waited for earlier batches before it started.",
            SECONDS_BUCKETS,
        )
        self.total_delay = histogram(
            "batch_total_delay_seconds",
            "Time from a batch's time to the end of its processing.",
            SECONDS_BUCKETS,
        )
        self.records = histogram("batch_records", "Input records per batch.", RECORDS_BUCKETS)
        self.last_processing_time = gauge(
            "last_batch_processing_seconds", "Processing time of the last completed batch."
        )
        self.last_scheduling_delay = gauge(
            "last_batch_scheduling_delay_seconds", "Scheduling delay of the last completed batch."
        )
        self.last_total_delay = gauge(
            "last_batch_total_delay_seconds", "Total delay of the last completed batch."
        )
        self.last_records = gauge(
            "last_batch_records", "Input records of the last completed batch."
        )
        self.last_completed = gauge(
            "last_completed_batch_timestamp_seconds",
            "Batch time (Unix seconds) of the last completed batch.",
        )
        self.input_rate = gauge(
            "input_rate_records_per_second",
            "Records per second an input stream brought in its last completed batch.",
            ("stream",),
        )
        self.input_records = Counter(
            PREFIX + "input_records",
            "Records an input stream brought into completed batches.",
            ("stream",),
            registry=registry,
        )
        self.completed = Counter(
            PREFIX + "batches_completed",
            "Batches whose jobs all ended, failed ones included.",
            registry=registry,
        )
        self.failed = Counter(
            PREFIX + "batches_failed",
            "Completed batches in which an output operation failed.",
            registry=registry,
        )
        self.batches = gauge("batches", "Batches waiting (pending) or running now.", ("state",))
        self.batches.labels("pending").set_function(lambda: self._pending)
        self.batches.labels("running").set_function(lambda: self._running)
        registry.register(_EngineCollector(engine, receiver_tracker))

    def on_batch_submitted(self, batch: BatchInfo) -> None:
        with self._lock:
            self._pending += 1

    def on_batch_started(self, batch: BatchInfo) -> None:
        with self._lock:
            self._pending -= 1
            self._running += 1

    def on_batch_completed(self, batch: BatchInfo) -> None:
        with self._lock:
            self._running -= 1
        for value, histogram, last in (
            (batch.processing_time, self.processing_time, self.last_processing_time),
            (batch.scheduling_delay, self.scheduling_delay, self.last_scheduling_delay),
            (batch.total_delay, self.total_delay, self.last_total_delay),
        ):
            if value is not None:
                histogram.observe(value)
                last.set(value)
        self.records.observe(batch.num_records)
        self.last_records.set(batch.num_records)
        for stream_id, count in batch.records_per_stream.items():
            self.input_records.labels(str(stream_id)).inc(count)
            self.input_rate.labels(str(stream_id)).set(count / self._interval)
        self.completed.inc()
        if batch.failed:
            self.failed.inc()
        self.last_completed.set(batch.batch_time / 1000)


class _EngineCollector(Collector):
    """What the engine knows at scrape time: executors, receivers, task failures and retries."""

    def __init__(self, engine: Engine, receiver_tracker: ReceiverTracker) -> None:
        self._engine = engine
        self._receiver_tracker = receiver_tracker

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        engine = self._engine
        yield GaugeMetricFamily(
            PREFIX + "executors_registered",
            "Executors registered with the driver.",
            value=len(engine.executor_ids()),
        )
        receivers = self._receiver_tracker.receivers()
        yield GaugeMetricFamily(
            PREFIX + "receivers_active",
            "Receivers running on an executor.",
            value=sum(1 for r in receivers if r.state == "started"),
        )
        yield CounterMetricFamily(
            PREFIX + "task_failures",
            "Task attempts that failed (each failure, retried or not).",
            value=engine.task_scheduler.tasks_failed,
        )
        yield CounterMetricFamily(
            PREFIX + "task_retries",
            "Failed tasks that were tried again on another executor.",
            value=engine.task_scheduler.tasks_retried,
        )
        bad = CounterMetricFamily(
            PREFIX + "receiver_bad_records",
            "Records receivers could not store as they came, by input stream and reason "
            "(too_long: dropped; undecodable: bad bytes replaced).",
            labels=["stream", "reason"],
        )
        for receiver in receivers:
            for reason, count in sorted(receiver.bad_records.items()):
                bad.add_metric([str(receiver.stream_id), reason], count)
        yield bad


class InputsCollector(Collector):
    """What input streams report at scrape time (InputDStream.input_details): each
    partition's lag, the backlog an autoscaler can act on, records lost to retention; a
    directory's files gone before they were read, undecodable records, and whether it can
    be listed."""

    def __init__(self, graph: DStreamGraph) -> None:
        self._graph = graph

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        lag = GaugeMetricFamily(
            PREFIX + "input_lag_records",
            "Records in the source not yet planned into a batch, by input stream and partition.",
            labels=["stream", "partition"],
        )
        lost = CounterMetricFamily(
            PREFIX + "input_lost_records",
            "Records deleted from the source before being read and skipped, by input stream.",
            labels=["stream"],
        )
        missing = CounterMetricFamily(
            PREFIX + "input_missing_files",
            "Files listed for a batch and gone before their task read them (skipped).",
            labels=["stream"],
        )
        undecodable = CounterMetricFamily(
            PREFIX + "input_undecodable_records",
            "Records not text in the input's encoding (replaced or skipped, per its policy).",
            labels=["stream"],
        )
        problem = GaugeMetricFamily(
            PREFIX + "input_problem",
            "1 while an input cannot read its source (a directory that cannot be listed).",
            labels=["stream"],
        )
        for stream in list(self._graph.inputs):
            details = stream.input_details()
            labels = [str(stream.id)]
            for partition, records in details.get("lag", {}).items():
                lag.add_metric([str(stream.id), partition], records)
            if "lost_records" in details:
                lost.add_metric(labels, details["lost_records"])
            if "files_missing" in details:
                missing.add_metric(labels, details["files_missing"])
            if "records_undecodable" in details:
                undecodable.add_metric(labels, details["records_undecodable"])
            if "problem" in details:
                problem.add_metric(labels, 0 if details["problem"] is None else 1)
        yield lag
        yield lost
        yield missing
        yield undecodable
        yield problem


class HealthCollector(Collector):
    """At scrape time: whether the running batch is stalled, slow tasks, and whether
    checkpoints are being written (the latter only with a checkpoint directory)."""

    def __init__(self, progress: ProgressMonitor, checkpoint: CheckpointHealth | None) -> None:
        self._progress = progress
        self._checkpoint = checkpoint

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        progress = self._progress
        seen = progress.observe()
        stall, slow = progress.report()
        yield GaugeMetricFamily(
            PREFIX + "batch_stalled",
            "1 while the running batch has made no progress for stall_timeout seconds.",
            value=0 if stall is None else 1,
        )
        yield GaugeMetricFamily(
            PREFIX + "batch_seconds_without_progress",
            "Seconds since the running batch last started, ended a task or an output "
            "operation; 0 when no batch runs.",
            value=0.0 if seen.batch_time is None else seen.idle_seconds,
        )
        yield CounterMetricFamily(
            PREFIX + "batch_stalls",
            "Stalls begun: batches that made no progress for stall_timeout seconds.",
            value=progress.stalls_total,
        )
        yield GaugeMetricFamily(
            PREFIX + "slow_tasks_running",
            "Tasks running now for longer than task_duration_threshold.",
            value=len(slow),
        )
        yield CounterMetricFamily(
            PREFIX + "slow_tasks",
            "Tasks that ran longer than task_duration_threshold (each counted once).",
            value=progress.slow_tasks_total,
        )
        health = self._checkpoint
        if health is None:
            return
        view = health.view()
        yield GaugeMetricFamily(
            PREFIX + "checkpoint_problem",
            "1 while checkpoints cannot be written (see the status document's checkpoint).",
            value=0 if view["problem"] is None else 1,
        )
        yield CounterMetricFamily(
            PREFIX + "checkpoint_write_failures",
            "Checkpoint files that could not be written.",
            value=view["write_failures"],
        )
        if view["last_written"] is not None:
            yield GaugeMetricFamily(
                PREFIX + "checkpoint_last_write_timestamp_seconds",
                "When a checkpoint was last written (Unix s).",
                value=view["last_written"],
            )


class OutputsCollector(Collector):
    """What sinks report at scrape time (DStreamGraph.output_details): rows written and
    records they refused and skipped on the executors (save_to_cassandra's
    on_bad_record="skip")."""

    def __init__(self, graph: DStreamGraph) -> None:
        self._graph = graph

    def collect(self) -> Iterator[CounterMetricFamily]:
        written = CounterMetricFamily(
            PREFIX + "output_rows_written",
            "Rows a sink wrote, by output operation (replayed batches count again).",
            labels=["output", "kind"],
        )
        bad = CounterMetricFamily(
            PREFIX + "output_bad_records",
            "Records a sink could not write and skipped, by output operation.",
            labels=["output", "kind"],
        )
        for details in self._graph.output_details():
            labels = [str(details["output_id"]), str(details.get("kind", ""))]
            if "rows_written" in details:
                written.add_metric(labels, details["rows_written"])
            if "bad_records" in details:
                bad.add_metric(labels, details["bad_records"])
        yield written
        yield bad
