"""Driver and executor metrics, read back from the registry they were created against."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from kubestream import StreamingContext, StreamingListener
from kubestream.clock import ManualClock
from kubestream.core.protocol import BlockAdded, TaskFinished, TaskState
from kubestream.driver.metrics import DriverMetrics
from kubestream.executor.metrics import ExecutorMetrics
from kubestream.metrics import PREFIX
from kubestream.storage.block_manager import BlockManager
from kubestream.streaming.batch import BatchInfo


class Completed(StreamingListener):
    """Registered after DriverMetrics, so when a batch shows up here the metrics have it."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self._cond = threading.Condition()

    def on_batch_completed(self, batch: BatchInfo) -> None:
        with self._cond:
            self.times.append(batch.batch_time)
            self._cond.notify_all()

    def wait(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.times) >= count, 30)


def fail_on_zero(x: int) -> int:
    return 10 // x


def test_driver_metrics_follow_batches_failures_and_the_engine() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(0.5, clock=clock)
    registry = CollectorRegistry()
    ssc.add_streaming_listener(
        DriverMetrics(registry, ssc.batch_interval, ssc.engine, ssc.receiver_tracker)
    )
    completed = Completed()
    ssc.add_streaming_listener(completed)
    ssc.queue_stream([[1, 2, 3], [0, 1], [5, 6, 7, 8]]).map(fail_on_zero).foreach_rdd(
        lambda rdd: rdd.collect()
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(PREFIX + name, labels)

    assert value("executors_registered") == 2
    ssc.start()
    try:
        for n in (1, 2, 3):
            clock.advance(0.5)
            completed.wait(n)
    finally:
        ssc.stop()
    assert value("batches_completed_total") == 3
    assert value("batches_failed_total") == 1
    assert value("input_records_total", stream="0") == 9
    assert value("input_rate_records_per_second", stream="0") == 4 / 0.5
    assert value("batch_records_count") == 3
    assert value("batch_records_sum") == 9
    assert value("last_batch_records") == 4
    assert value("last_completed_batch_timestamp_seconds") == 1001.5
    for name in ("processing", "scheduling_delay", "total_delay"):
        assert value(f"batch_{name}_seconds_count") == 3
        assert value(f"last_batch_{name}_seconds") is not None
    assert value("batches", state="pending") == 0
    assert value("batches", state="running") == 0
    # The batch with a zero fails its task on every attempt: 4 failures, 3 of them retried.
    failures, retries = value("task_failures_total"), value("task_retries_total")
    assert failures is not None and retries is not None
    assert failures >= 4 and 0 < retries < failures
    assert value("receivers_active") == 0


def test_pending_and_running_batches_follow_the_listener_hooks() -> None:
    registry = CollectorRegistry()
    ssc = StreamingContext(1.0, clock=ManualClock(0.0))
    metrics = DriverMetrics(registry, 1.0, ssc.engine, ssc.receiver_tracker)
    a, b = BatchInfo(1000, 1.0), BatchInfo(2000, 2.0)
    metrics.on_batch_submitted(a)
    metrics.on_batch_submitted(b)
    metrics.on_batch_started(a)
    pending = registry.get_sample_value(PREFIX + "batches", {"state": "pending"})
    running = registry.get_sample_value(PREFIX + "batches", {"state": "running"})
    assert (pending, running) == (1, 1)
    ssc.stop()


def test_every_metric_has_the_prefix_and_histograms_have_explicit_buckets() -> None:
    registry = CollectorRegistry()
    ssc = StreamingContext(1.0, clock=ManualClock(0.0))
    DriverMetrics(registry, 1.0, ssc.engine, ssc.receiver_tracker)
    ExecutorMetrics(registry, "exec-1", BlockManager().stats)
    ssc.stop()
    families = list(registry.collect())
    assert len(families) > 15
    for family in families:
        assert family.name.startswith(PREFIX), family.name
        if family.type == "histogram":
            bounds = {s.labels["le"] for s in family.samples if s.name.endswith("_bucket")}
            assert len(bounds) > 8, family.name


def test_executor_metrics_count_tasks_received_records_and_blocks() -> None:
    registry = CollectorRegistry()
    blocks = BlockManager()
    metrics = ExecutorMetrics(registry, "exec-7", blocks.stats)
    metrics.observe(TaskFinished(1, TaskState.FINISHED, duration=0.002))
    metrics.observe(TaskFinished(2, TaskState.FINISHED, duration=0.004))
    metrics.observe(TaskFinished(3, TaskState.FAILED, duration=0.5))
    metrics.observe(BlockAdded(0, "input-0-1", 120))
    metrics.observe(BlockAdded(0, "input-0-2", 30))
    metrics.observe(BlockAdded(3, "input-3-1", 7))
    metrics.observe(BlockAdded(0, "input-0-2", 30, repeated=True))  # to a restarted driver
    blocks.put("a", b"x" * 100)
    blocks.put("b", b"y" * 28)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(PREFIX + name, labels)

    assert value("executor_info", executor_id="exec-7") == 1
    assert value("executor_tasks_total", state="finished") == 2
    assert value("executor_tasks_total", state="failed") == 1
    assert value("executor_tasks_total", state="fetch_failed") == 0
    assert value("executor_task_seconds_count") == 3
    assert value("executor_task_seconds_bucket", le="0.005") == 2
    assert value("executor_received_records_total", stream="0") == 150
    assert value("executor_received_records_total", stream="3") == 7
    assert value("executor_blocks") == 2
    assert value("executor_block_bytes") == 128
