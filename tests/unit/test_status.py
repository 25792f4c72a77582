"""The status document (/api/v1/status) built from plain data, and from a running context."""

from __future__ import annotations

import json

import pytest

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.driver.status import (
    ExecutorView,
    ReceiverView,
    build_status,
    context_status,
    summarise,
)
from kubestream.streaming.batch import BatchInfo


def done(
    t_ms: int, records: int, delay: float, processing: float, errors: list[str] | None = None
) -> BatchInfo:
    """A completed batch of time t_ms submitted on time, started `delay` later."""
    start = t_ms / 1000 + delay
    return BatchInfo(
        t_ms,
        t_ms / 1000,
        records,
        {0: records},
        processing_start=start,
        processing_end=start + processing,
        errors=errors or [],
        output_operations=1,
    )


def status_of(batches: list[BatchInfo], now: float = 100.0, limit: int = 100) -> dict:  # type: ignore[type-arg]
    return build_status(
        job="wc",
        state="active",
        batch_interval=1.0,
        batches=batches,
        executors=[
            ExecutorView("exec-2", "tcp://b:1", running_tasks=1),
            ExecutorView("exec-1", "tcp://a:1", memory_bytes=2048, blocks=3),
        ],
        receivers=[ReceiverView(0, "exec-1", "started")],
        now=now,
        limit=limit,
    )


def test_batches_are_listed_newest_first_with_their_state_and_timings() -> None:
    queued = BatchInfo(99_000, 99.0, 5, {0: 5})
    running = BatchInfo(98_000, 98.0, 4, {0: 4}, processing_start=98.5)
    failed = done(97_000, 3, 0.25, 0.5, ["output operation 0 failed: boom"])
    ok = done(96_000, 2, 0.0, 0.125)
    doc = status_of([ok, queued, failed, running])
    assert [b["batch_time"] for b in doc["batches"]] == [99_000, 98_000, 97_000, 96_000]
    assert [b["state"] for b in doc["batches"]] == ["queued", "processing", "failed", "completed"]
    first_failed = doc["batches"][2]
    assert first_failed["scheduling_delay"] == 0.25
    assert first_failed["processing_time"] == 0.5
    assert first_failed["total_delay"] == 0.75
    assert first_failed["errors"] == ["output operation 0 failed: boom"]
    assert first_failed["records_per_stream"] == {"0": 3}
    assert doc["batches"][0]["processing_time"] is None
    assert doc["totals"] == {"batches": 4, "completed": 2, "failed": 1, "records": 5}
    assert doc["last_completed_batch_time"] == 97_000
    assert doc["summary"]["pending_batches"] == 1
    assert doc["summary"]["running_batches"] == 1
    json.dumps(doc, allow_nan=False)


def test_only_the_newest_batches_up_to_the_limit_are_listed() -> None:
    batches = [done(t * 1000, 1, 0, 0.1) for t in range(50, 100)]
    assert [b["batch_time"] for b in status_of(batches, limit=3)["batches"]] == [
        99_000,
        98_000,
        97_000,
    ]
    assert status_of(batches, limit=0)["batches"] == []
    assert status_of(batches, limit=0)["totals"]["completed"] == 50


def test_executors_and_receivers() -> None:
    doc = status_of([])
    assert doc["executors"] == [
        {
            "id": "exec-1",
            "address": "tcp://a:1",
            "state": "active",
            "running_tasks": 0,
            "memory_bytes": 2048,
            "blocks": 3,
        },
        {
            "id": "exec-2",
            "address": "tcp://b:1",
            "state": "active",
            "running_tasks": 1,
            "memory_bytes": None,
            "blocks": None,
        },
    ]
    assert doc["receivers"] == [
        {
            "stream_id": 0,
            "executor_id": "exec-1",
            "state": "started",
            "last_error": "",
            "bad_records": {},
        }
    ]
    assert doc["summary"]["processing_ratio"] is None
    assert doc["summary"]["scheduling_delay_trend"] is None
    assert doc["last_completed_batch_time"] is None


def test_summary_covers_the_last_minute_only() -> None:
    old = [done(t * 1000, 1000, 5.0, 9.0) for t in range(0, 40)]
    recent = [done(t * 1000, 100, 0.0, 0.5) for t in range(41, 101)]
    summary = summarise(old + recent, batch_interval=1.0, now=100.0)
    assert summary["batches"] == 60
    assert summary["avg_processing_time"] == pytest.approx(0.5)
    assert summary["processing_ratio"] == pytest.approx(0.5)
    assert summary["input_rate"] == pytest.approx(100)
    assert summary["avg_scheduling_delay"] == 0
    assert summary["scheduling_delay_trend"] == pytest.approx(0)
    assert summary["failed_batches"] == 0


def test_a_growing_scheduling_delay_has_a_positive_trend_and_a_steady_one_none() -> None:
    # Processing takes 1.5 intervals: each batch starts half a second later than the last.
    growing = [done(t * 1000, 10, (t - 50) * 0.5, 1.5) for t in range(50, 100)]
    summary = summarise(growing, batch_interval=1.0, now=100.0)
    assert summary["scheduling_delay_trend"] == pytest.approx(0.5)
    assert summary["processing_ratio"] == pytest.approx(1.5)
    assert summary["max_scheduling_delay"] == pytest.approx(24.5)
    shrinking = [done(t * 1000, 10, (100 - t) * 0.1, 0.5) for t in range(50, 100)]
    assert summarise(shrinking, 1.0, now=100.0)["scheduling_delay_trend"] == pytest.approx(-0.1)
    single = summarise([done(99_000, 1, 0.1, 0.1)], 1.0, now=100.0)
    assert single["scheduling_delay_trend"] is None
    assert single["avg_scheduling_delay"] == pytest.approx(0.1)


def test_a_running_context_reports_its_batches_and_in_process_executors() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    ssc.queue_stream([[1, 2, 3], [4]]).foreach_rdd(lambda rdd: rdd.count())
    ssc.start()
    try:
        for t in (1_001_000, 1_002_000):
            clock.advance(1.0)
            ssc.wait_for_batch(t, 30)
        doc = context_status(ssc, "queue-job", limit=10)
    finally:
        ssc.stop()
    assert doc["job"] == "queue-job"
    assert doc["state"] == "active"
    assert doc["batch_interval"] == 1.0
    assert [(b["batch_time"], b["num_records"]) for b in doc["batches"]] == [
        (1_002_000, 1),
        (1_001_000, 3),
    ]
    assert [e["id"] for e in doc["executors"]] == ["exec-1", "exec-2"]
    assert doc["executors"][0]["address"] == "inproc://exec-1"
    assert doc["receivers"] == []
    assert doc["summary"]["batches"] == 2
