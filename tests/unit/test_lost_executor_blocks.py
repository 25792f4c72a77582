"""Blocks an executor wrote to the write-ahead log but never reported (it died between the
log write and its report, after its source was acknowledged) are adopted when it is lost."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.protocol import BlockAdded
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.receiver import Receiver
from kubestream.storage.block_manager import serialise
from kubestream.storage.checkpoint_store import write_atomically
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker, block_writer


class Idle(Receiver):
    def on_start(self) -> None:
        pass

    def on_stop(self) -> None:
        pass


executor_ids = st.text(st.sampled_from("abcxyz019-."), min_size=1, max_size=20)


@given(
    stream=st.integers(0, 99),
    executor=executor_ids,
    incarnation=st.text(st.sampled_from("0123456789abcdef"), min_size=1, max_size=12),
    seq=st.integers(1, 10**6),
)
def test_the_writer_of_any_block_id_is_found(
    stream: int, executor: str, incarnation: str, seq: int
) -> None:
    assert block_writer(f"input-{stream}-{executor}-{incarnation}-{seq}") == executor


def _log(wal: Path, block_id: str, records: list[str]) -> str:
    path = wal / "0" / block_id
    os.makedirs(path.parent, exist_ok=True)
    write_atomically(str(path), serialise(records))
    return str(path)


def test_a_lost_executors_unreported_blocks_are_adopted_once(tmp_path: Path) -> None:
    tracker = ReceiverTracker(
        lambda executor_id, message: None, lambda: {"exec-1": ExecutorAddress("exec-1", "x")}
    )
    tracker.wal_dir = str(tmp_path)
    tracker.register(0, Idle())
    tracker.start()  # the stream is received on exec-1
    reported = _log(tmp_path, "input-0-exec-1-aa-1", ["a"])
    tracker.add_block("exec-1", BlockAdded(0, "input-0-exec-1-aa-1", 1, None, reported))
    unreported = _log(tmp_path, "input-0-exec-1-aa-2", ["b", "c"])
    _log(tmp_path, "input-0-exec-12-bb-1", ["d"])  # a live executor's, report in flight

    tracker.executor_lost("exec-1")
    tracker.allocate_blocks_to_batch(1000)
    blocks = tracker.blocks_of_batch(1000, 0)
    assert sorted(b.block_id for b in blocks) == ["input-0-exec-1-aa-1", "input-0-exec-1-aa-2"]
    assert sum(b.records for b in blocks) == 3

    # Declared lost but alive after all: its late report must not count the block twice.
    tracker.add_block("exec-1", BlockAdded(0, "input-0-exec-1-aa-2", 2, None, unreported))
    tracker.allocate_blocks_to_batch(2000)
    assert tracker.blocks_of_batch(2000, 0) == []
