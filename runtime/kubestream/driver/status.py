"""The driver's status document, served at `/api/v1/status` and read by the operator.

`build_status` is a pure function of plain data (batches, executors, receivers,
the time), so its numbers are tested without a server; `context_status` gathers
that data from a running StreamingContext. The schema is in docs/status-api.md:
change both together.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubestream.core.task_scheduler import RunningTask
from kubestream.driver.stall import Stall
from kubestream.streaming.batch import BatchInfo

if TYPE_CHECKING:
    from kubestream.driver.progress import ProgressMonitor
    from kubestream.streaming.context import StreamingContext

API_VERSION = "v1"
SUMMARY_WINDOW = 60.0


@dataclass(frozen=True, slots=True)
class ExecutorView:
    id: str
    address: str
    state: str = "active"
    running_tasks: int = 0
    memory_bytes: int | None = None
    blocks: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiverView:
    stream_id: int
    executor_id: str | None
    state: str
    last_error: str = ""
    bad_records: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InputView:
    stream_id: int
    kind: str
    rate_limit: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def batch_state(batch: BatchInfo) -> str:
    if batch.processing_start is None:
        return "queued"
    if batch.processing_end is None:
        return "processing"
    return "failed" if batch.failed else "completed"


def _batch(batch: BatchInfo, batch_interval: float) -> dict[str, Any]:
    return {
        "batch_time": batch.batch_time,
        "state": batch_state(batch),
        "num_records": batch.num_records,
        "records_per_stream": {str(k): v for k, v in sorted(batch.records_per_stream.items())},
        "input_rate": batch.num_records / batch_interval,
        "submission_time": batch.submission_time,
        "processing_start": batch.processing_start,
        "processing_end": batch.processing_end,
        "scheduling_delay": batch.scheduling_delay,
        "processing_time": batch.processing_time,
        "total_delay": batch.total_delay,
        "output_operations": batch.output_operations,
        "errors": list(batch.errors),
    }


def _task(task: RunningTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "stage_id": task.stage_id,
        "partition": task.partition,
        "executor_id": task.executor_id,
        "running_seconds": task.seconds,
    }


def _stall(stall: Stall | None, now: float) -> dict[str, Any] | None:
    if stall is None:
        return None
    return {
        "kind": stall.kind,
        "batch_time": stall.batch_time,
        "seconds_without_progress": stall.idle_seconds,
        "since": now - stall.idle_seconds,
        "timeout": stall.timeout,
        "message": stall.message,
        "tasks": [_task(t) for t in stall.tasks],
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than two distinct x."""
    try:
        return statistics.linear_regression([x for x, _ in points], [y for _, y in points]).slope
    except statistics.StatisticsError:
        return None


def summarise(
    batches: Sequence[BatchInfo], batch_interval: float, now: float, window: float = SUMMARY_WINDOW
) -> dict[str, Any]:
    """What an autoscaler needs: load ratio and delay trend over the batches of the last window."""
    done = [
        b
        for b in batches
        if b.completed and b.batch_time / 1000 >= now - window and b.processing_time is not None
    ]
    processing = [b.processing_time for b in done if b.processing_time is not None]
    delays = [
        (b.batch_time / 1000, b.scheduling_delay) for b in done if b.scheduling_delay is not None
    ]
    average = _mean(processing)
    return {
        "window_seconds": window,
        "batches": len(done),
        "failed_batches": sum(1 for b in done if b.failed),
        "avg_processing_time": average,
        "processing_ratio": None if average is None else average / batch_interval,
        "avg_scheduling_delay": _mean([d for _, d in delays]),
        "max_scheduling_delay": max((d for _, d in delays), default=None),
        "scheduling_delay_trend": _slope(delays),
        "avg_total_delay": _mean([b.total_delay for b in done if b.total_delay is not None]),
        "input_rate": (
            sum(b.num_records for b in done) / (len(done) * batch_interval) if done else None
        ),
        "pending_batches": sum(1 for b in batches if b.processing_start is None),
        "running_batches": sum(1 for b in batches if batch_state(b) == "processing"),
    }


def build_status(
    *,
    job: str,
    state: str,
    batch_interval: float,
    batches: Sequence[BatchInfo],
    executors: Sequence[ExecutorView],
    receivers: Sequence[ReceiverView],
    now: float,
    inputs: Sequence[InputView] = (),
    outputs: Sequence[Mapping[str, Any]] = (),
    decommissions: Mapping[str, str] | None = None,
    limit: int = 100,
    window: float = SUMMARY_WINDOW,
    stall: Stall | None = None,
    slow_tasks: Sequence[RunningTask] = (),
    checkpoint: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The status document; `batches` in any order, the newest `limit` are listed newest first.

    `stall` and `slow_tasks` come from driver.stall's decisions, `checkpoint` from
    CheckpointHealth.view() (None without a checkpoint directory).
    """
    ordered = sorted(batches, key=lambda b: b.batch_time)
    completed = [b for b in ordered if b.completed]
    return {
        "api_version": API_VERSION,
        "job": job,
        "state": state,
        "time": now,
        "batch_interval": batch_interval,
        "last_completed_batch_time": completed[-1].batch_time if completed else None,
        "totals": {
            "batches": len(ordered),
            "completed": len(completed),
            "failed": sum(1 for b in completed if b.failed),
            "records": sum(b.num_records for b in completed),
        },
        "summary": summarise(ordered, batch_interval, now, window),
        "batches": [_batch(b, batch_interval) for b in reversed(ordered[-limit:] if limit else [])],
        "executors": [
            {
                "id": e.id,
                "address": e.address,
                "state": e.state,
                "running_tasks": e.running_tasks,
                "memory_bytes": e.memory_bytes,
                "blocks": e.blocks,
            }
            for e in sorted(executors, key=lambda e: e.id)
        ],
        "receivers": [
            {
                "stream_id": r.stream_id,
                "executor_id": r.executor_id,
                "state": r.state,
                "last_error": r.last_error,
                "bad_records": dict(r.bad_records),
            }
            for r in sorted(receivers, key=lambda r: r.stream_id)
        ],
        "inputs": [
            {"stream_id": i.stream_id, "kind": i.kind, "rate_limit": i.rate_limit, **i.details}
            for i in sorted(inputs, key=lambda i: i.stream_id)
        ],
        "outputs": [dict(o) for o in outputs],
        "decommissions": dict(decommissions or {}),
        "stall": _stall(stall, now),
        "slow_tasks": [_task(t) for t in slow_tasks],
        "checkpoint": None if checkpoint is None else dict(checkpoint),
    }


def context_status(
    ssc: StreamingContext,
    job: str,
    limit: int = 100,
    decommissions: Mapping[str, str] | None = None,
    progress: ProgressMonitor | None = None,
) -> dict[str, Any]:
    """build_status over what a running context, its engine and `progress` know now."""
    engine = ssc.engine
    executors = []
    for eid, address in engine.task_scheduler.executors().items():
        blocks, memory = engine.block_stats(eid) or (None, None)
        executors.append(
            ExecutorView(
                eid,
                address.address,
                state="draining" if eid in engine.draining else "active",
                running_tasks=engine.task_scheduler.running_on(eid),
                memory_bytes=memory,
                blocks=blocks,
            )
        )
    receivers = [
        ReceiverView(r.stream_id, r.executor_id, r.state, r.last_error, dict(r.bad_records))
        for r in ssc.receiver_tracker.receivers()
    ]
    stall, slow = progress.report() if progress is not None else (None, ())
    health = ssc.checkpoint_health
    return build_status(
        job=job,
        state=ssc.state.value,
        batch_interval=ssc.batch_interval,
        batches=ssc.batches,
        executors=executors,
        receivers=receivers,
        now=ssc.clock.now(),
        inputs=[
            InputView(i.id, i.describe(), i.rate_limit, i.input_details()) for i in ssc.graph.inputs
        ],
        outputs=ssc.graph.output_details(),
        decommissions=decommissions,
        limit=limit,
        stall=stall,
        slow_tasks=slow,
        checkpoint=None if health is None else health.view(),
    )
