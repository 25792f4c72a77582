"""Receivers: long-running readers hosted on executors, for sources that push data.

A subclass implements on_start (start its own thread; must not block) and
on_stop, and calls store() with each record. Stored records are cut into a block
every block interval; a block reported to the driver belongs to the next batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Protocol

from kubestream.errors import ConfigError


class BlockNotRecordedError(ConnectionError):
    """store_block's records are not confirmed by the driver (it did not answer in time, or
    the stream is received elsewhere now): the receiver must not acknowledge its source,
    which then sends the records again. A ConnectionError, as a lost broker connection is."""


class ReceiverHost(Protocol):
    def store(self, records: Iterable[Any]) -> None: ...

    def store_block(self, records: list[Any]) -> None: ...

    def restart(self, message: str, error: BaseException | None) -> None: ...

    def report_error(self, message: str, error: BaseException | None) -> None: ...

    def report_bad_records(self, reason: str, records: int, detail: str) -> None: ...

    def is_stopped(self) -> bool: ...


class Receiver(ABC):
    """Spark's Receiver: implement on_start/on_stop, call store() from your thread."""

    _host: ReceiverHost | None = None

    def attach(self, host: ReceiverHost) -> None:
        """Bind to the executor's supervisor that hosts this receiver (done by the executor)."""
        self._host = host

    @abstractmethod
    def on_start(self) -> None:
        """Start reading; must return at once (start a thread)."""

    @abstractmethod
    def on_stop(self) -> None:
        """Release what on_start acquired, and return only once the reading thread has
        stopped storing (join it): a moved receiver is started elsewhere as soon as this
        returns, and one still storing would overlap its replacement and read twice."""

    def _require_host(self) -> ReceiverHost:
        if self._host is None:
            raise ConfigError(
                f"{type(self).__name__} is not running on an executor: store() and restart() "
                "work once StreamingContext.receiver_stream(receiver) started it"
            )
        return self._host

    def store(self, record: Any) -> None:
        """Store one record; it joins the block being built (cut every block interval).

        Raises
        ------
        ConfigError
            The receiver is not running on an executor (the same for every method below).
        """
        self._require_host().store((record,))

    def store_many(self, records: Iterable[Any]) -> None:
        """Store records, as store() does one by one."""
        self._require_host().store(records)

    def store_block(self, records: Iterable[Any]) -> None:
        """Store records as one block and return once it is safe: kept on two executors,
        with the write-ahead log on written under the checkpoint directory, and recorded by
        the driver's ReceiverTracker (so a restarted driver processes it too). A reliable
        receiver acknowledges its source only after this returns.

        Raises
        ------
        BlockNotRecordedError
            The driver did not confirm the block (it is gone, or the stream moved): do not
            acknowledge; the source sends the records again.
        """
        self._require_host().store_block(list(records))

    def restart(self, message: str, error: BaseException | None = None) -> None:
        """Stop, wait the restart delay, start again: for a lost connection."""
        self._require_host().restart(message, error)

    def report_error(self, message: str, error: BaseException | None = None) -> None:
        """Tell the driver's StreamingListeners (on_receiver_error) and go on receiving."""
        self._require_host().report_error(message, error)

    def report_bad_records(self, reason: str, records: int, detail: str = "") -> None:
        """Count `records` records this receiver could not store as they came (too long,
        not text ...), by `reason`: warned about at a bounded rate, counted in the driver's
        status (receivers[].bad_records) and metrics; never one log line per record."""
        self._require_host().report_bad_records(reason, records, detail)

    def is_stopped(self) -> bool:
        """Whether the receiver should stop: the reading thread's loop condition."""
        return self._host is None or self._host.is_stopped()
