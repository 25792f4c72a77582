"""A reliable receiver acknowledges its source only after the driver recorded the block
(Spark's AddBlock reply): the real ReceiverTracker and ReceiverSupervisor, linked by direct
calls that can be cut, as a driver killed -9 cuts them while its executors run on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.core.protocol import (
    BlockAbandoned,
    BlockAdded,
    BlockRecorded,
    ToDriver,
    ToExecutor,
)
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.receiver import BlockNotRecordedError, Receiver
from kubestream.executor.receiver_supervisor import ReceiverSupervisor
from kubestream.storage.block_manager import BlockManager, deserialise, serialise
from kubestream.storage.checkpoint_store import read_verified, write_atomically
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker

CONFIRM_TIMEOUT = 0.05


class Acking(Receiver):
    """A reliable receiver's shape (RabbitMQ's, Flume's): store a block, then acknowledge
    its records to the source; a record not acknowledged the source delivers again."""

    def __init__(self) -> None:
        self.acked: list[str] = []

    def on_start(self) -> None:
        pass

    def on_stop(self) -> None:
        pass

    def deliver(self, records: list[str]) -> bool:
        try:
            self.store_block(records)
        except BlockNotRecordedError:
            return False
        self.acked += records
        return True


class Link:
    """Driver and executor by direct calls (as in-process executors are linked); `driver`
    None is a dead driver, or a new one the executor has not registered with yet: the
    executor's messages go nowhere, as they do over ZeroMQ."""

    def __init__(self) -> None:
        self.driver: ReceiverTracker | None = None
        self.supervisor: ReceiverSupervisor | None = None
        self.sent: list[ToDriver] = []
        self.answers: list[ToExecutor] = []
        self.refused: list[ReceiverSupervisor] = []
        self.blocks = BlockManager()  # the executor's

    def to_driver(self, message: ToDriver) -> None:
        self.sent.append(message)
        if self.driver is not None:
            self.driver.receiver_message("exec-1", message)  # type: ignore[arg-type]

    def to_executor(self, executor_id: str, message: ToExecutor) -> None:
        self.answers.append(message)
        if isinstance(message, BlockRecorded) and self.supervisor is not None:
            self.supervisor.block_recorded(message)


def new_driver(link: Link, wal: Path, placed_on: str) -> ReceiverTracker:
    """A (re)started driver: its tracker adopts the log's blocks, then places the stream."""
    tracker = ReceiverTracker(
        link.to_executor, lambda: {placed_on: ExecutorAddress(placed_on, "inproc://x")}
    )
    tracker.wal_dir = str(wal)
    tracker.register(0, Acking())  # what it would ship to the executor
    tracker.adopt_orphans()
    tracker.start()
    return tracker


def supervise(link: Link, receiver: Receiver, wal: Path) -> ReceiverSupervisor:
    supervisor = ReceiverSupervisor(
        0,
        receiver,
        "exec-1",
        link.blocks,
        link.to_driver,
        3600.0,
        lambda block_id, blob: None,
        str(wal),
        confirm_timeout=CONFIRM_TIMEOUT,
        on_refused=link.refused.append,
    )
    link.supervisor = supervisor
    receiver.attach(supervisor)
    return supervisor


def held(tracker: ReceiverTracker) -> list[str]:
    """The records of every block the driver holds, from their log files."""
    state = tracker.checkpoint_state()
    blocks = [b for streams in state["allocated"].values() for b in streams.get(0, [])]
    blocks += state["unallocated"].get(0, [])
    return [r for b in blocks for r in deserialise(read_verified(b.wal_path))]


def test_a_block_the_driver_never_answers_is_not_acknowledged(tmp_path: Path) -> None:
    link, receiver = Link(), Acking()
    supervise(link, receiver, tmp_path)  # the driver died: nothing answers
    assert receiver.deliver(["a", "b"]) is False
    assert receiver.acked == []
    added = [m for m in link.sent if isinstance(m, BlockAdded)]
    assert [m.records for m in added] == [2]
    assert [m.block_id for m in link.sent if isinstance(m, BlockAbandoned)] == [added[0].block_id]


def test_a_stopped_receiver_stores_nothing_more(tmp_path: Path) -> None:
    """Once stopped (to be moved), a receiver's late store is refused before anything is
    written or reported: its replacement may read the same records."""
    link, receiver = Link(), Acking()
    link.driver = new_driver(link, tmp_path, "exec-1")
    supervisor = supervise(link, receiver, tmp_path)
    supervisor.start()
    assert receiver.deliver(["a"]) is True
    supervisor.stop(announce=False)
    sent = len(link.sent)
    assert receiver.deliver(["b"]) is False
    assert receiver.acked == ["a"]
    assert link.sent[sent:] == []
    assert held(link.driver) == ["a"]


def test_an_abandoned_block_is_forgotten_by_the_next_driver_unless_it_holds_it(
    tmp_path: Path,
) -> None:
    link, receiver = Link(), Acking()
    supervisor = supervise(link, receiver, tmp_path)
    assert receiver.deliver(["a"]) is False  # the driver is down
    successor = new_driver(link, tmp_path, "exec-1")  # adopts "a" from the log
    assert receiver.deliver(["b"]) is False  # written after its scan, before registering
    link.driver = successor
    supervisor.driver_connected()  # registered: abandoned reports are repeated
    # "a" was adopted before its abandonment arrived, so it stays (its redelivery is the
    # duplicate ids drop); "b" is forgotten and its log file deleted: redelivered once.
    assert held(successor) == ["a"]
    assert sorted(os.listdir(tmp_path / "0")) == [
        b.block_id for b in successor.checkpoint_state()["unallocated"][0]
    ]
    assert receiver.deliver(["b"]) is True
    assert sorted(held(successor)) == ["a", "b"]


def test_a_block_from_a_receiver_the_stream_left_is_refused_and_unlogged(tmp_path: Path) -> None:
    link, receiver = Link(), Acking()
    supervisor = supervise(link, receiver, tmp_path)
    # A new driver placed the stream on exec-2; this receiver is its predecessor's.
    link.driver = new_driver(link, tmp_path, "exec-2")
    assert receiver.deliver(["x"]) is False
    assert link.refused == [supervisor]
    assert receiver.acked == []
    assert held(link.driver) == []
    assert os.listdir(tmp_path / "0") == []
    assert link.blocks.ids() == []


def test_a_late_report_of_an_adopted_block_is_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "0" / "input-0-exec-1-aa-1"
    os.makedirs(path.parent)
    write_atomically(str(path), serialise(["z"]))
    link = Link()
    link.driver = new_driver(link, tmp_path, "exec-2")  # adopted at start
    link.answers.clear()
    link.driver.receiver_message("exec-1", BlockAdded(0, path.name, 1, None, str(path)))
    assert link.answers == [BlockRecorded(0, path.name, True, "")]
    assert path.exists()


Step = tuple[str, Any]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(1, 3)),
        st.tuples(st.just("kill driver"), st.none()),
        st.tuples(st.just("start driver"), st.none()),
        st.tuples(st.just("register"), st.none()),
    ),
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=steps)
def test_every_acknowledged_record_is_held_by_the_last_driver(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Step]
) -> None:
    """Whatever the order of deliveries, driver deaths, driver starts (each adopting the
    log) and the executor registering with the newest driver: a record the source saw
    acknowledged is one the last driver will process, and a record not acknowledged is
    delivered again by the source until it is."""
    wal = tmp_path_factory.mktemp("wal")
    link, receiver = Link(), Acking()
    supervisor = supervise(link, receiver, wal)
    newest = link.driver = new_driver(link, wal, "exec-1")
    supervisor.driver_connected()
    source = [f"r{i}" for i in range(40)]
    unacked: list[str] = []
    for step, count in [*steps, ("start driver", None), ("register", None)]:
        if step == "deliver":
            batch, unacked = unacked[:count], unacked[count:]
            more = count - len(batch)
            batch, source = batch + source[:more], source[more:]
            if not receiver.deliver(batch):
                unacked = batch + unacked
        elif step == "kill driver":
            link.driver = None
        elif step == "start driver":
            link.driver, newest = None, new_driver(link, wal, "exec-1")
        elif link.driver is not newest:
            link.driver = newest
            supervisor.driver_connected()
    kept = held(newest)
    assert set(receiver.acked) <= set(kept)
    assert set(kept) <= set(receiver.acked) | set(unacked)
