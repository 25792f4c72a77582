"""The job's Batch Delay and Last Batch columns from the runtime's own status document."""

import json
from collections.abc import Mapping, Sequence

from kubestream.core.task_scheduler import RunningTask
from kubestream.driver.stall import Stall
from kubestream.driver.status import ExecutorView, build_status
from kubestream.streaming.batch import BatchInfo
from kubestream_operator.driver_status import (
    DriverAPI,
    batch_fields,
    decommission,
    driver_problems,
    executor_report,
)
from kubestream_operator.plan import DriverReport
from tests.operator.harness import free_port


def document(
    batches: list[BatchInfo],
    executors: Sequence[ExecutorView] = (),
    decommissions: Mapping[str, str] | None = None,
) -> dict[str, object]:
    return build_status(
        job="wc",
        state="active",
        batch_interval=1.0,
        batches=batches,
        executors=executors,
        receivers=[],
        now=1_800_000_010.0,
        decommissions=decommissions,
    )


def test_newest_finished_batch_gives_delay_and_time() -> None:
    batches = [
        BatchInfo(1_800_000_000_000, 1_800_000_000.0, 5, {}, 1_800_000_000.1, 1_800_000_000.5),
        BatchInfo(1_800_000_001_000, 1_800_000_001.0, 5, {}, 1_800_000_001.1, 1_800_000_002.25),
        BatchInfo(1_800_000_002_000, 1_800_000_002.0, 5, {}, 1_800_000_002.3, None),
    ]
    assert batch_fields(document(batches)) == {
        "lastBatchTime": "2027-01-15T08:00:01Z",
        "batchDelay": "1.25s",
    }


def test_long_delays_read_in_minutes_and_nothing_known_gives_nothing() -> None:
    slow = BatchInfo(1_800_000_000_000, 1_800_000_000.0, 1, {}, 1_800_000_000.0, 1_800_000_125.0)
    assert batch_fields(document([slow]))["batchDelay"] == "2m5s"
    assert batch_fields(document([])) == {}
    assert batch_fields({"api_version": "v2", "last_completed_batch_time": 1}) == {}


def test_executor_report_names_registered_executors_and_drain_outcomes() -> None:
    executors = [ExecutorView("0", "tcp://a:7078"), ExecutorView("1", "tcp://b:7078", "draining")]
    doc = document([], executors, {"1": "draining", "2": "failed: timed out"})
    assert executor_report(doc) == DriverReport(
        frozenset({"0", "1"}), {"1": "draining", "2": "failed: timed out"}
    )
    assert executor_report(document([])) == DriverReport()
    assert executor_report({"api_version": "v2", "executors": [{"id": "0"}]}) is None


def test_a_driver_that_does_not_answer_gives_a_reason_without_the_token() -> None:
    refused = decommission(DriverAPI("127.0.0.1", free_port()), "1", "secret-token", timeout=1)
    assert refused.startswith("the driver did not answer")
    assert "secret-token" not in refused


def test_a_stall_and_a_failing_checkpoint_are_problems_with_what_and_where() -> None:
    stall = Stall(
        "tasks_running",
        1_800_000_000_000,
        42.0,
        30.0,
        "batch 1800000000000 has made no progress for 42 s: 1 task(s) running and none ended",
        (RunningTask(9, 3, 1, "exec-1", 42.0),),
    )
    doc = build_status(
        job="wc",
        state="active",
        batch_interval=1.0,
        batches=[],
        executors=[],
        receivers=[],
        now=1_800_000_010.0,
        stall=stall,
        checkpoint={
            "directory": "/checkpoint",
            "problem": {
                "path": "/checkpoint/metadata-1800000000000.0",
                "error": "OSError: [Errno 28] No space left on device",
                "since": 1_800_000_000.0,
                "failures": 12,
            },
            "last_written": 1_799_999_999.0,
            "last_batch_time": 1_799_999_999_000,
            "write_failures": 12,
        },
    )
    report = executor_report(json.loads(json.dumps(doc)))
    assert report is not None
    (stalled, stalled_text), (failing, failing_text) = report.problems
    assert stalled == "BatchStalled"
    assert stalled_text.startswith(
        "the driver reports batch 1800000000000 stalled (tasks_running): batch 1800000000000 "
        "has made no progress for 42 s"
    )
    assert failing == "CheckpointFailing"
    assert failing_text.startswith(
        "the driver cannot write checkpoints to /checkpoint: "
        "/checkpoint/metadata-1800000000000.0: OSError: [Errno 28] No space left on device "
        "(12 failed writes"
    )
    assert driver_problems(document([])) == ()
    assert driver_problems({"api_version": "v1", "stall": "?", "checkpoint": {"problem": 1}}) == ()
