"""The job's Batch Delay and Last Batch columns from the runtime's own status document."""

import json
from collections.abc import Mapping, Sequence

from kubestream import StreamingContext
from kubestream.core.input_files import InputEvent
from kubestream.core.task_scheduler import RunningTask
from kubestream.driver.stall import Stall
from kubestream.driver.status import ExecutorView, InputView, build_status
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.sources.kafka.stream import DATA_LOSS, KafkaInputDStream
from kubestream_operator.driver_status import (
    DriverAPI,
    batch_fields,
    data_loss,
    data_loss_note,
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
    inputs: Sequence[InputView] = (),
) -> dict[str, object]:
    return build_status(
        job="wc",
        state="active",
        batch_interval=1.0,
        batches=batches,
        executors=executors,
        receivers=[],
        inputs=inputs,
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


def test_data_loss_reported_by_executors_reaches_status_and_one_event_per_increase() -> None:
    """The document is the runtime's own: a Kafka stream told of losses the way executors
    tell the driver (InputEvents with their task results)."""
    ssc = StreamingContext(1.0, executors=1)
    try:
        streams = [
            KafkaInputDStream(ssc.env, topic, {"bootstrap.servers": "127.0.0.1:1"})
            for topic in ("a", "b")
        ]
        views = lambda: [InputView(s.id, "kafka", None, s.input_details()) for s in streams]  # noqa: E731

        def lose(stream: KafkaInputDStream, records: int, detail: str) -> None:
            stream._input_event(InputEvent("t-0", DATA_LOSS, records, detail, stream.id))

        assert data_loss(document([], inputs=views())) is None
        lose(streams[0], 60, "topic 'a' partition 0: wanted offset 0, available [60, 100)")
        first = data_loss(document([], inputs=views()))
        assert first == {
            "events": 1,
            "lostRecords": 60,
            "last": "topic 'a' partition 0: wanted offset 0, available [60, 100)",
        }
        note = data_loss_note(None, first)
        assert note is not None and (note.type, note.reason) == ("Warning", "DataLoss")
        assert "1 new" in note.message and "topic 'a' partition 0" in note.message
        assert data_loss_note(first, first) is None  # the next pass sees nothing new
        lose(streams[0], 2, "topic 'a' partition 0: wanted offset 100, available [102, 110)")
        lose(streams[1], 5, "topic 'b' partition 0: wanted offset 3, available [8, 9)")
        second = data_loss(document([], inputs=views()))
        assert second is not None and (second["events"], second["lostRecords"]) == (3, 67)
        assert second["last"] == "topic 'b' partition 0: wanted offset 3, available [8, 9)"
        assert "2 new" in (data_loss_note(first, second) or note).message
        # A restarted driver counts from zero: its first loss is new though below the record.
        restarted = {"events": 1, "lostRecords": 4, "last": "x"}
        assert "1 new" in (data_loss_note(second, restarted) or note).message
        # Another stream's or kind's events are not counted.
        streams[1]._input_event(InputEvent("t-0", DATA_LOSS, 9, "other", streams[0].id + 99))
        streams[1]._input_event(InputEvent("/d/f", "missing", 0, "gone", streams[1].id))
        assert data_loss(document([], inputs=views())) == second
    finally:
        ssc.stop()


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
