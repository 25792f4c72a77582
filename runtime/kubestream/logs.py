"""Logging setup for every kubestream process: text for people, JSON lines for log pipelines.

A JSON line carries the job, and where known the batch time, executor id and task
id, as fields of their own, so a log store can filter on them. Fields come from
`bind()` (for everything logged in that thread or task meanwhile), from
`extra=` on a call, or from `configure()` for the whole process. Registered
secrets are replaced before a line is written, whatever logged them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FIELDS = ("job", "batch_time", "executor_id", "task_id", "stream_id")
FORMATS = ("text", "json")
REDACTED = "[redacted]"

_bound: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("kubestream_log_fields")
_process_fields: dict[str, Any] = {}
_secrets: set[str] = set()


def redact(*secrets: str | None) -> None:
    """Never write these strings to a log line."""
    _secrets.update(s for s in secrets if s)


def _scrub(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def push(**fields: Any) -> contextvars.Token[dict[str, Any]]:
    """Add fields to every line this thread logs until `pop(token)`; `bind` for callbacks."""
    return _bound.set({**_bound.get({}), **fields})


def pop(token: contextvars.Token[dict[str, Any]]) -> None:
    _bound.reset(token)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every line logged in this context (thread) until the block ends."""
    token = _bound.set({**_bound.get({}), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {**_process_fields, **_bound.get({})}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return {k: fields[k] for k in FIELDS if fields.get(k) is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _scrub(json.dumps(line, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return _scrub(super().format(record))


def configure(level: str, fmt: str = "text", **fields: Any) -> None:
    """Log to stderr at `level` in `fmt`; `fields` (job, executor_id) go on every JSON line."""
    _process_fields.clear()
    _process_fields.update({k: v for k, v in fields.items() if v is not None})
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level))
