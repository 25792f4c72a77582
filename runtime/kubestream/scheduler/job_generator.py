"""The batch timer: one job set per batch time, on a clock aligned to the batch interval."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable

from kubestream.clock import Clock

log = logging.getLogger(__name__)


def first_batch_time(now_ms: float, interval_ms: int) -> int:
    """The first interval boundary strictly after now: batch times are multiples of the interval."""
    return (math.floor(now_ms / interval_ms) + 1) * interval_ms


class JobGenerator:
    def __init__(
        self,
        clock: Clock,
        interval_ms: int,
        generate: Callable[[int], None],
        name: str = "job-generator",
    ) -> None:
        self._clock = clock
        self._interval_ms = interval_ms
        self._generate = generate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.next_time: int = 0
        self.last_generated: int | None = None

    def start(self, first_time: int | None = None) -> None:
        self.next_time = first_time or first_batch_time(self._clock.now() * 1000, self._interval_ms)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while self._clock.wait_until(self.next_time / 1000, self._stop):
            batch_time = self.next_time
            try:
                self._generate(batch_time)
            except Exception:
                log.exception("generating the batch of %d failed", batch_time)
            self.last_generated = batch_time
            self.next_time += self._interval_ms
