"""A checkpoint that cannot be written: the batch fails naming the file and the error, the
status document and the log say so (rate-limited), cleanup goes on, and once writes
succeed again the problem clears and the state is exact.

The fault is injected (a full disk: OSError ENOSPC from the checkpoint store's atomic
write) on an in-process context; tests/integration/test_checkpoint_failure.py makes a
real one on executor processes.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from kubestream.driver.status import context_status
from kubestream.storage import checkpoint_store
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.listener import StreamingListener

KEYS = 3


def _full_disk(path: str, payload: Any, key: bytes | None = None) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class Done(StreamingListener):
    """Batch times whose on_batch_completed was called: after their end checkpoint."""

    def __init__(self) -> None:
        self.times: set[int] = set()
        self.changed = threading.Condition()

    def on_batch_completed(self, batch: BatchInfo) -> None:
        with self.changed:
            self.times.add(batch.batch_time)
            self.changed.notify_all()

    def wait_for(self, batch_time: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: batch_time in self.times, 30)


def _total(values: list[int], old: int | None) -> int:
    return sum(values) + (old or 0)


def test_a_checkpoint_that_cannot_be_written_is_shown_and_recovery_is_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(1000.0)
    directory = str(tmp_path / "checkpoint")
    ssc = StreamingContext(
        1.0, directory, clock=clock, on_batch_failure="continue", checkpoint_interval=1.0
    )
    states: dict[int, dict[int, int]] = {}

    def collect(batch_time: int, rdd: RDD[tuple[int, int]]) -> None:
        states[batch_time] = dict(rdd.collect())

    ssc.rate_stream(50).map(lambda x: (x % KEYS, 1)).update_state_by_key(_total).foreach_rdd(
        collect
    )
    health = ssc.checkpoint_health
    assert health is not None
    done = Done()
    ssc.add_streaming_listener(done)
    ssc.start()

    def batch() -> BatchInfo:
        """The next batch, once its end (and its checkpoint) is over."""
        clock.advance(1.0)
        batch_time = round(clock.now() * 1000)
        assert done.wait_for(batch_time)
        return ssc.wait_for_batch(batch_time, 1)

    try:
        for _ in range(3):
            assert not batch().failed
        assert context_status(ssc, "j")["checkpoint"]["problem"] is None
        last_written = health.last_written
        sizes = [len(s.generated) for s in ssc.graph.streams]

        caplog.set_level(logging.ERROR, "kubestream.streaming.checkpointing")
        monkeypatch.setattr(checkpoint_store, "write_atomically", _full_disk)
        failed = [batch() for _ in range(6)]
        for info in failed:
            assert info.failed
            assert any("No space left on device" in e and directory in e for e in info.errors), (
                info.errors
            )
        doc = context_status(ssc, "j")["checkpoint"]
        assert doc["directory"] == directory
        assert doc["problem"]["path"].startswith(directory + "/metadata-")
        assert doc["problem"]["error"] == "OSError: [Errno 28] No space left on device"
        assert doc["problem"]["since"] == pytest.approx(1004.0)
        assert doc["problem"]["failures"] >= 6
        assert doc["write_failures"] == doc["problem"]["failures"]
        assert doc["last_written"] == last_written
        logged = [r for r in caplog.records if "cannot write checkpoint" in r.getMessage()]
        assert len(logged) == 1, "a failing checkpoint is logged once a minute, not every batch"
        # Cleanup went on: no stream keeps more batches than before the fault.
        now = [len(s.generated) for s in ssc.graph.streams]
        assert all(n <= before + 1 for n, before in zip(now, sizes, strict=True)), (now, sizes)

        monkeypatch.undo()
        for _ in range(3):
            assert not batch().failed
        doc = context_status(ssc, "j")["checkpoint"]
        assert doc["problem"] is None and doc["last_written"] > last_written
    finally:
        ssc.stop()
    newest = states[max(states)]
    consumed = sum(b.num_records for b in ssc.batches)
    assert newest == dict(Counter(x % KEYS for x in range(consumed)))
