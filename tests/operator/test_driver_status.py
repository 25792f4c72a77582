"""The job's Batch Delay and Last Batch columns from the runtime's own status document."""

from kubestream.batch import BatchInfo
from kubestream.status import build_status
from kubestream_operator.driver_status import batch_fields


def document(batches: list[BatchInfo]) -> dict[str, object]:
    return build_status(
        job="wc",
        state="active",
        batch_interval=1.0,
        batches=batches,
        executors=[],
        receivers=[],
        now=1_800_000_010.0,
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
