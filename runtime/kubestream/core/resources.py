"""Clients that connectors keep open across tasks in one process, and the settings sizing them.

Connectors (the streaming layer) cache clients per process, Kafka consumers and
producers, Cassandra sessions, because opening one per task would cost a
handshake every batch. Each registers here how to close its cache (`on_close`);
the executor process calls `close_all` as it exits and the StreamingContext when it
stops, so servers see sessions end with the job, not with a dropped connection.
The executor, which may not import the streaming layer, hands connectors their
settings through `configure`; they read them with `setting`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from kubestream.settings import Setting

T = TypeVar("T")

log = logging.getLogger(__name__)

_closers: dict[str, Callable[[], None]] = {}
_configured: dict[str, Any] = {}
_lock = threading.Lock()


def configure(declared: Setting[T], value: T) -> None:
    """Set `declared` for this process's connectors; ValueError if out of its bounds."""
    checked = declared.check(value)
    with _lock:
        _configured[declared.name] = checked


def setting(declared: Setting[T]) -> T:
    """The value `configure` set, else the declared default."""
    with _lock:
        value: T = _configured.get(declared.name, declared.default)
    return value


def on_close(name: str, close: Callable[[], None]) -> None:
    """Call `close` at the next `close_all`; registering `name` again replaces its closer.
    `close` must leave its cache usable: the next task may open a client again."""
    with _lock:
        _closers[name] = close


def close_all() -> list[str]:
    """Close every registered cache once, each even when another fails; returns the names
    of those whose close raised (logged, never raised: the process is stopping)."""
    with _lock:
        closers = list(_closers.items())
        _closers.clear()
    failed = []
    for name, close in closers:
        try:
            close()
        except Exception as e:
            failed.append(name)
            log.warning("closing %s failed: %s: %s", name, type(e).__name__, e)
    return failed
