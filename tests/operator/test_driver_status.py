"""The job's Batch Delay and Last Batch columns from the runtime's own status document."""

from collections.abc import Mapping, Sequence

from kubestream.driver.status import ExecutorView, build_status
from kubestream.streaming.batch import BatchInfo
from kubestream_operator.driver_status import (
    DriverAPI,
    batch_fields,
    decommission,
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
