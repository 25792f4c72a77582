"""Batch times on the driver's log lines."""

from __future__ import annotations

import contextvars
from typing import Any

from kubestream import logs
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.listener import StreamingListener


class BatchLogContext(StreamingListener):
    """Puts the batch time on every line logged while a batch runs (on the job-scheduler thread)."""

    def __init__(self) -> None:
        self._token: contextvars.Token[dict[str, Any]] | None = None

    def on_batch_started(self, batch: BatchInfo) -> None:
        self._token = logs.push(batch_time=batch.batch_time)

    def on_batch_completed(self, batch: BatchInfo) -> None:
        if self._token is not None:
            logs.pop(self._token)
            self._token = None
