"""Clocks for the batch timer.

The JobGenerator asks a clock for the time and waits on it, so unit tests drive
batches with a ManualClock instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch; batch times are labelled in this scale."""
        ...

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        """Block until `deadline` or `stop`; True when the deadline was reached."""
        ...


class SystemClock:
    """Wall-clock labels, monotonic waits: a wall-clock jump cannot skip or repeat batches."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0)

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        while True:
            remaining = deadline - self.now()
            if remaining <= 0:
                return True
            if stop.wait(remaining):
                return False


class ManualClock:
    """A clock that moves only when a test advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._changed = threading.Condition()

    def now(self) -> float:
        with self._changed:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds
            self._changed.notify_all()

    def set(self, now: float) -> None:
        with self._changed:
            self._now = now
            self._changed.notify_all()

    def wait_until(self, deadline: float, stop: threading.Event) -> bool:
        with self._changed:
            while self._now < deadline:
                if stop.is_set():
                    return False
                self._changed.wait(0.05)
            return not stop.is_set()
