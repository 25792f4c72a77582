"""A state update's task reads its new version back while the change is on its way to the
replica: the put waits for the peer's answer (the peer is most often busy with its own
partition), and the read does not wait for it. The task still reports the replica."""

from __future__ import annotations

import pickle
import threading
from typing import Any

from kubestream.core.functions import FunctionRegistry
from kubestream.core.protocol import ToDriver
from kubestream.core.tasks import (
    ExecutorAddress,
    ParallelSource,
    ReadBack,
    StateSource,
    TaskDescription,
    UpdatedAndRead,
    UpdateState,
    run_task,
)
from kubestream.executor.core import ExecutorCore
from kubestream.storage.state_store import PartitionState, StateDelta

PEER = ExecutorAddress("exec-2", "tcp://127.0.0.1:1")
READ = threading.Event()


def add_values(part: PartitionState, records: Any, _batch_time: int) -> StateDelta:
    updated: dict[str, int] = {}
    for key, value in records:
        updated[key] = updated.get(key, part.data.get(key, 0)) + value
    return StateDelta(updated, [])


def read_entries(_split: int, records: Any) -> list[tuple[str, int]]:
    READ.set()
    return sorted(records)


def no_fetch(*_args: Any) -> Any:
    """A fake fetcher: nothing is fetched from peers here."""
    raise ConnectionError("nothing is fetched in this test")


def test_the_read_runs_while_the_replica_put_waits() -> None:
    READ.clear()
    read_before_the_put_answered: list[bool] = []

    def fake_busy_peer(location: ExecutorAddress, block_id: str, blob: bytes) -> bool:
        """A fake putter: the peer takes the delta, answering once the read ran (at most
        10 s later, so the test fails rather than hangs without the overlap)."""
        read_before_the_put_answered.append(READ.wait(10))
        return True

    sent: list[ToDriver] = []
    core = ExecutorCore("exec-1", sent.append, no_fetch, fake_busy_peer)
    try:
        core.states.install(("state_1", 0), "state_1_1000_0", {"a": 1}, None)
        registry = FunctionRegistry()
        updater, read = registry.ref(add_values), registry.ref(read_entries)
        core.functions.add({ref: registry.blob(ref) for ref in (updater, read)})
        output = UpdateState(
            "state_1",
            "state_1_2000_0",
            StateSource("state_1_1000_0", ()),
            updater,
            2000,
            (PEER,),
            ReadBack("entries", 0, (), read),
        )
        task = TaskDescription(1, 1, 0, ParallelSource((("a", 2), ("b", 5))), (), output)

        result = run_task(task, core)

        assert isinstance(result, UpdatedAndRead)
        assert result.error is None
        assert pickle.loads(result.value) == [("a", 3), ("b", 5)]
        assert result.replica == PEER.executor_id
        assert read_before_the_put_answered == [True]
    finally:
        core.stop(wait=5)
