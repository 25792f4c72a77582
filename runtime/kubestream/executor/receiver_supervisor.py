"""Runs one receiver on an executor and cuts what it stores into blocks every block interval.

Each block is reported to the driver and, as Spark's ReceiverSupervisorImpl does, kept
waiting until the driver's ReceiverTracker answers that it recorded it: a reliable
receiver acknowledges its source only then. With no answer in time (the driver is
gone) the block is abandoned, and the source sends its records again; a block the
driver refuses (the stream is received elsewhere now, e.g. after a driver restart)
stops this receiver.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from kubestream.clock import SystemClock
from kubestream.core.protocol import (
    BadRecords,
    BlockAbandoned,
    BlockAdded,
    BlockRecorded,
    ReceiverStatus,
    ToDriver,
)
from kubestream.errors import USER_CODE_ERRORS
from kubestream.executor.rate_limiter import RateLimiter
from kubestream.executor.receiver import BlockNotRecordedError, Receiver
from kubestream.storage.block_manager import BlockManager, serialise
from kubestream.storage.checkpoint_store import write_atomically

log = logging.getLogger(__name__)

BAD_RECORD_WARNING_INTERVAL = 10.0
"""Seconds between warnings about a receiver's bad records (each with the count since)."""


BLOCK_CONFIRM_TIMEOUT = 10.0
"""Seconds a block waits for the driver to record it (Spark's AddBlock ask). A live driver
answers in milliseconds; it stays below the sources' own patience (a Flume Thrift sink's
request timeout, 20 s; a RabbitMQ connection's missed heartbeats, 60 s), so an unconfirmed
block goes back to its source before the source gives up on the receiver."""


BLOCK_CUT_LEAD = 0.02
"""Seconds before a batch's time that its last block is cut: storing, replicating and
reporting a block takes a few milliseconds, and a block the driver has not recorded when a
batch starts goes to the next batch."""


CLOCK_RESOLUTION = 1e-6
"""Seconds: a cut closer than this to `now` is the one just made, recomputed with rounding
(1.7e9 s is exact to 2.4e-7 s), not a new one."""


def next_block_cut(now: float, interval: float) -> float:
    """Clock time (seconds) of the first cut after `now`: a lead before a multiple of the
    interval. Batch times are multiples of the batch interval, so when the block interval
    divides it, as the default does, each batch gets the same number of blocks. Timed from
    the previous cut instead, cuts drift by the time each block takes to store."""
    lead = min(BLOCK_CUT_LEAD, interval / 4)
    cut = (math.floor((now + lead) / interval) + 1) * interval - lead
    return cut if cut - now > CLOCK_RESOLUTION else cut + interval


@dataclasses.dataclass(slots=True)
class _Report:
    """A reported block waiting for the driver's BlockRecorded."""

    message: BlockAdded
    answered: threading.Event = dataclasses.field(default_factory=threading.Event)
    answer: BlockRecorded | None = None


class ReceiverSupervisor:
    def __init__(
        self,
        stream_id: int,
        receiver: Receiver,
        executor_id: str,
        blocks: BlockManager,
        to_driver: Callable[[ToDriver], None],
        block_interval: float,
        replicate: Callable[[str, bytes], str | None],
        wal_dir: str | None = None,
        restart_delay: float = 2.0,
        rate_limit: float | None = None,
        confirm_timeout: float = BLOCK_CONFIRM_TIMEOUT,
        on_refused: Callable[[ReceiverSupervisor], None] | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.receiver = receiver
        self._executor_id = executor_id
        self._blocks = blocks
        self._to_driver = to_driver
        self._block_interval = block_interval
        self._replicate = replicate
        self._wal_dir = wal_dir
        self._write_lock = threading.Lock()
        self._restart_delay = restart_delay
        self._limiter = RateLimiter(rate_limit)
        self._buffer: list[Any] = []
        self._buffer_lock = threading.Lock()
        self._stopped = threading.Event()
        self._seq = 0
        self._bad: dict[str, tuple[int, str]] = {}
        self._bad_unwarned: dict[str, int] = {}
        self._bad_warned_at: dict[str, float] = {}
        self._confirm_timeout = confirm_timeout
        self._on_refused = on_refused
        self._reports: dict[str, _Report] = {}
        self._resend: list[BlockAdded | BlockAbandoned] = []
        self._reports_lock = threading.Lock()
        # A receiver that comes back to an executor must not reuse the ids of blocks kept there.
        self._incarnation = uuid.uuid4().hex[:12]
        self._cutter = threading.Thread(
            target=self._cut_blocks, name=f"block-generator-{stream_id}", daemon=True
        )

    def start(self) -> None:
        self.receiver.attach(self)
        self._cutter.start()
        self._start_receiver()

    def _start_receiver(self) -> None:
        try:
            self.receiver.on_start()
            self._to_driver(ReceiverStatus(self.stream_id, "started"))
        except USER_CODE_ERRORS as exc:
            self.report_error("receiver failed to start", exc)

    def stop(self, announce: bool = True) -> None:
        """Stop the receiver and flush what it stored, so a graceful stop loses nothing;
        with `announce`, then tell the driver it stopped."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        try:
            self.receiver.on_stop()
        except USER_CODE_ERRORS as exc:
            self.report_error("receiver failed to stop cleanly", exc)
        self._cutter.join(timeout=5)
        self._flush()
        if announce:
            self._to_driver(ReceiverStatus(self.stream_id, "stopped"))

    def set_rate_limit(self, rate: float | None) -> None:
        log.info("receiver %s: rate limit %s records/s", self.stream_id, rate)
        self._limiter.set_rate(rate)

    # ReceiverHost
    def store(self, records: Iterable[Any]) -> None:
        batch = list(records)
        self._limiter.acquire(len(batch), self._stopped)
        with self._buffer_lock:
            self._buffer.extend(batch)

    def restart(self, message: str, error: BaseException | None) -> None:
        self.report_error(f"restarting receiver: {message}", error)

        def again() -> None:
            try:
                self.receiver.on_stop()
            except USER_CODE_ERRORS as exc:
                log.warning("receiver %s failed to stop before restart: %s", self.stream_id, exc)
            if not self._stopped.wait(self._restart_delay):
                self._start_receiver()

        threading.Thread(
            target=again, name=f"receiver-restart-{self.stream_id}", daemon=True
        ).start()

    def report_error(self, message: str, error: BaseException | None) -> None:
        detail = f"{message}: {error}" if error else message
        log.warning("receiver %s: %s", self.stream_id, detail)
        self._to_driver(ReceiverStatus(self.stream_id, "error", detail))

    def report_bad_records(self, reason: str, records: int, detail: str) -> None:
        """Count now, tell the driver with the next block cut, warn at a bounded rate."""
        now = time.monotonic()
        with self._buffer_lock:
            count, _ = self._bad.get(reason, (0, ""))
            self._bad[reason] = (count + records, detail)
            unwarned = self._bad_unwarned.get(reason, 0) + records
            last = self._bad_warned_at.get(reason)
            if last is not None and now - last < BAD_RECORD_WARNING_INTERVAL:
                self._bad_unwarned[reason] = unwarned
                return
            self._bad_unwarned[reason] = 0
            self._bad_warned_at[reason] = now
        log.warning("receiver %s: %d records %s: %s", self.stream_id, unwarned, reason, detail)

    def is_stopped(self) -> bool:
        return self._stopped.is_set()

    def _cut_blocks(self) -> None:
        clock = SystemClock()
        while clock.wait_until(next_block_cut(clock.now(), self._block_interval), self._stopped):
            self._flush()

    def store_block(self, records: list[Any]) -> None:
        """See Receiver.store_block. A receiver stopped (to be moved, or restarted) stores
        nothing more: its replacement may already read the same source, and a block stored
        now would be read twice; it keeps the records unacknowledged instead."""
        if self._stopped.is_set():
            raise BlockNotRecordedError(
                f"receiver {self.stream_id} is stopped: block not stored, records not to be"
                " acknowledged"
            )
        if records:
            self._limiter.acquire(len(records), self._stopped)
            self._write_block(records, reliable=True)

    def _flush(self) -> None:
        with self._buffer_lock:
            records, self._buffer = self._buffer, []
            bad, self._bad = self._bad, {}
        if records:
            try:
                self._write_block(records, reliable=False)
            except BlockNotRecordedError as exc:
                log.warning("receiver %s: %s", self.stream_id, exc)
        for reason, (count, detail) in bad.items():
            self._to_driver(BadRecords(self.stream_id, reason, count, detail))

    def block_recorded(self, answer: BlockRecorded) -> None:
        """The driver's answer to a block report (on the executor's transport thread)."""
        with self._reports_lock:
            report = self._reports.get(answer.block_id)
            if report is None:
                return  # answered after its wait ended, or a second answer to a resent report
            report.answer = answer
        report.answered.set()

    def driver_connected(self) -> None:
        """The executor (re)registered with a driver, perhaps a new one that never heard the
        reports sent to its predecessor: send again the blocks still waiting for an answer,
        those abandoned and those stored with store() that were never answered."""
        with self._reports_lock:
            reports = [r.message for r in self._reports.values()]
            messages = [dataclasses.replace(m, repeated=True) for m in reports] + [
                dataclasses.replace(m, repeated=True) if isinstance(m, BlockAdded) else m
                for m in self._resend
            ]
            self._resend = []
        for message in messages:
            self._to_driver(message)

    def _write_block(self, records: list[Any], reliable: bool) -> None:
        """Memory, write-ahead log, second executor, then tell the driver and wait until it
        recorded the block: in that order. Reliable (store_block): an unanswered block is
        abandoned, since its source sends the records again; otherwise (store(), whose
        source sends nothing again) its report is repeated to the next driver instead.

        Raises
        ------
        BlockNotRecordedError
            The driver did not answer within the confirmation timeout, or refused the block.
        """
        with self._write_lock:
            self._seq += 1
            block_id = f"input-{self.stream_id}-{self._executor_id}-{self._incarnation}-{self._seq}"
        blob = serialise(records)
        self._blocks.put(block_id, blob)
        wal_path = None
        if self._wal_dir is not None:
            wal_path = os.path.join(self._wal_dir, str(self.stream_id), block_id)
            os.makedirs(os.path.dirname(wal_path), exist_ok=True)
            write_atomically(wal_path, blob)
        replica = self._replicate(block_id, blob)
        report = _Report(BlockAdded(self.stream_id, block_id, len(records), replica, wal_path))
        abandoned = BlockAbandoned(self.stream_id, block_id, wal_path)
        with self._reports_lock:
            self._reports[block_id] = report
        try:
            self._to_driver(report.message)
            report.answered.wait(self._confirm_timeout)
        finally:
            with self._reports_lock:
                del self._reports[block_id]
                answer = report.answer
                if answer is None:
                    self._resend.append(abandoned if reliable else report.message)
        if answer is None:
            if reliable:
                self._to_driver(abandoned)
            then = "; the source is not acknowledged and sends the records again"
            raise BlockNotRecordedError(
                f"the driver did not record block {block_id} within {self._confirm_timeout:g} s"
                + (then if reliable else "")
            )
        if not answer.recorded:
            self._blocks.remove([block_id])
            self._refused(answer.reason)
            raise BlockNotRecordedError(f"the driver refused block {block_id}: {answer.reason}")

    def _refused(self, reason: str) -> None:
        """This receiver is not the stream's any more (a previous driver started it): stop."""
        if self._stopped.is_set():
            return
        log.warning("receiver %s stops: %s", self.stream_id, reason)
        if self._on_refused is not None:
            self._on_refused(self)
