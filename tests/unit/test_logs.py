"""JSON log lines: job, batch time, executor and task as fields; secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.driver.batch_logs import BatchLogContext
from kubestream.logs import REDACTED, JsonFormatter, bind, redact


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("kubestream.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_fields_come_from_bind_and_extra(lines: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = lines
    with bind(executor_id="exec-1"):
        with bind(task_id=7):
            log.info("task %d done", 7)
        log.warning("between tasks", extra={"batch_time": 5000})
    log.info("outside")
    first, second, third = parsed(stream)
    assert first["message"] == "task 7 done"
    assert (first["executor_id"], first["task_id"], first["level"]) == ("exec-1", 7, "INFO")
    assert second["batch_time"] == 5000 and "task_id" not in second
    assert "executor_id" not in third
    assert third["logger"] == "kubestream.test_logs"


def test_exceptions_are_kept_and_secrets_redacted(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = lines
    secret = "x" * 20 + "-not-a-real-curve-secret"
    redact(secret, None)
    try:
        raise ValueError(f"bad key {secret}")
    except ValueError:
        log.exception("loading keys from %s failed", secret)
    (line,) = parsed(stream)
    assert secret not in stream.getvalue()
    assert line["message"] == f"loading keys from {REDACTED} failed"
    assert "ValueError: bad key" in str(line["exception"])


def test_lines_logged_while_a_batch_runs_carry_its_time(
    lines: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = lines
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    ssc.add_streaming_listener(BatchLogContext())
    ssc.queue_stream([[1], [2]]).foreach_rdd(lambda rdd: log.info("saw %s", rdd.collect()))
    ssc.start()
    try:
        for t in (1_001_000, 1_002_000):
            clock.advance(1.0)
            ssc.wait_for_batch(t, 30)
    finally:
        ssc.stop()
    log.info("after")
    assert [(line["message"], line.get("batch_time")) for line in parsed(stream)] == [
        ("saw [1]", 1_001_000),
        ("saw [2]", 1_002_000),
        ("after", None),
    ]
