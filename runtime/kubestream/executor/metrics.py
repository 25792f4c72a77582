"""An executor's Prometheus metrics: from the messages it sends the driver and its block store."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubestream.core.protocol import BadRecords, BlockAdded, TaskFinished, TaskState
from kubestream.metrics import PREFIX, SECONDS_BUCKETS


class ExecutorMetrics:
    """An executor's metrics; `observe` sees every message the executor sends the driver."""

    def __init__(
        self,
        registry: CollectorRegistry,
        executor_id: str,
        block_stats: Callable[[], tuple[int, int]],
    ) -> None:
        info = Gauge(
            PREFIX + "executor_info", "This executor's id.", ("executor_id",), registry=registry
        )
        info.labels(executor_id).set(1)
        self.tasks = Counter(
            PREFIX + "executor_tasks",
            "Tasks this executor ran, by outcome (finished, failed, fetch_failed).",
            ("state",),
            registry=registry,
        )
        self.task_time = Histogram(
            PREFIX + "executor_task_seconds",
            "Time tasks took on this executor.",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.records_received = Counter(
            PREFIX + "executor_received_records",
            "Records the receivers on this executor stored, by input stream.",
            ("stream",),
            registry=registry,
        )
        self.bad_records = Counter(
            PREFIX + "executor_receiver_bad_records",
            "Records the receivers on this executor could not store as they came, by input "
            "stream and reason (too_long: dropped; undecodable: bad bytes replaced).",
            ("stream", "reason"),
            registry=registry,
        )
        self.input_events = Counter(
            PREFIX + "executor_input_events",
            "What tasks met in their input files, by kind (missing: file skipped; "
            "undecodable: records replaced or skipped, counted per record).",
            ("kind",),
            registry=registry,
        )
        blocks = Gauge(
            PREFIX + "executor_blocks",
            "Blocks held in this executor's memory.",
            registry=registry,
        )
        blocks.set_function(lambda: block_stats()[0])
        block_bytes = Gauge(
            PREFIX + "executor_block_bytes",
            "Bytes of the blocks held in this executor's memory.",
            registry=registry,
        )
        block_bytes.set_function(lambda: block_stats()[1])
        for state in TaskState:
            self.tasks.labels(state.value)

    def observe(self, message: object) -> None:
        if isinstance(message, TaskFinished):
            self.tasks.labels(message.state.value).inc()
            self.task_time.observe(message.duration)
            for event in message.input_events:
                self.input_events.labels(event.kind).inc(max(1, event.records))
        elif isinstance(message, BlockAdded) and not message.repeated:
            self.records_received.labels(str(message.stream_id)).inc(message.records)
        elif isinstance(message, BadRecords):
            self.bad_records.labels(str(message.stream_id), message.reason).inc(message.records)
