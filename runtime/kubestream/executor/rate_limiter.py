"""Paces a receiver's store() calls to a rate, as Spark's receiver RateLimiter does.

A receiver that stores faster than its limit is made to wait, so the backlog
stays in its source (a reliable one keeps it; nothing is dropped) instead of
piling up as blocks the job cannot process in time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, rate: float | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._rate = rate
        self._next_free = now()

    def set_rate(self, rate: float | None) -> None:
        """None lifts the limit; records already let through are paid for at the new rate."""
        with self._lock:
            now = self._now()
            owed = max(0.0, self._next_free - now) * (self._rate or 0.0)
            self._rate = rate
            self._next_free = now + (owed / rate if rate else 0.0)

    def reserve(self, records: int) -> float:
        """Seconds the caller must wait before handing over `records`."""
        if self._rate is None:
            return 0.0
        with self._lock:
            if self._rate is None or records <= 0:
                return 0.0
            now = self._now()
            start = max(now, self._next_free)
            self._next_free = start + records / self._rate
            return start - now

    def acquire(self, records: int, stopped: threading.Event) -> None:
        """Wait for the records' turn; returns at once when `stopped` is set."""
        delay = self.reserve(records)
        if delay > 0:
            stopped.wait(delay)
