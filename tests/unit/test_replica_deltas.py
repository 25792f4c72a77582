"""An executor applies the state deltas its peers send while no task of its own runs: a
delta arriving during a task waits for the task to end (it would share the GIL and the
state store's lock with it), unless MAX_DEFERRED_DELTAS wait; then it is applied at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kubestream.core.engine import wait_until
from kubestream.core.functions import FunctionRegistry
from kubestream.core.protocol import LaunchTask, ToDriver
from kubestream.core.tasks import EmptySource, ResultOutput, TaskDescription
from kubestream.executor.core import MAX_DEFERRED_DELTAS, ExecutorCore
from kubestream.storage.state_store import StateDelta, delta_message

KEY = ("state_1", 0)
STARTED = threading.Event()
RELEASE = threading.Event()


def version(t: int) -> str:
    return f"state_1_{t}_0"


def wait_for_release(_split: int, _records: Any) -> None:
    STARTED.set()
    RELEASE.wait(30)


def no_peer(*_args: Any) -> Any:
    """A fake fetcher and putter: this executor has no peers."""
    raise ConnectionError("no peers in this test")


@pytest.fixture
def core() -> Any:
    sent: list[ToDriver] = []
    executor = ExecutorCore("exec-1", sent.append, no_peer, no_peer)
    executor.states.install(KEY, version(0), {"a": 0}, None)
    yield executor
    RELEASE.set()
    executor.stop(wait=5)


def start_blocking_task(core: ExecutorCore) -> None:
    """Returns once the task runs: a launched task waits in a queue for a worker thread."""
    STARTED.clear()
    RELEASE.clear()
    registry = FunctionRegistry()
    ref = registry.ref(wait_for_release)
    task = TaskDescription(1, 1, 0, EmptySource(), (), ResultOutput(ref))
    core.handle(LaunchTask(task, {ref: registry.blob(ref)}))
    assert STARTED.wait(10)


def put_deltas(core: ExecutorCore, first: int, count: int) -> None:
    for t in range(first, first + count):
        message = delta_message(KEY, version(t - 1), version(t), StateDelta({"a": t}, []))
        assert core.serve_put(version(t), message)


def test_a_delta_arriving_while_idle_is_applied(core: ExecutorCore) -> None:
    put_deltas(core, 1, 1)
    assert wait_until(lambda: core.states.queued_deltas() == 0, 5)


def test_deltas_wait_for_the_running_task_unless_too_many_wait(core: ExecutorCore) -> None:
    start_blocking_task(core)
    put_deltas(core, 1, MAX_DEFERRED_DELTAS - 1)
    assert not wait_until(lambda: core.states.queued_deltas() < MAX_DEFERRED_DELTAS - 1, 0.5)
    put_deltas(core, MAX_DEFERRED_DELTAS, 1)  # one too many: applied down to the bound
    assert wait_until(lambda: core.states.queued_deltas() == MAX_DEFERRED_DELTAS - 1, 5)
    RELEASE.set()  # the task ends: the rest is applied
    assert wait_until(lambda: core.states.queued_deltas() == 0, 5)
    assert core.states.read(version(MAX_DEFERRED_DELTAS)) == ([("a", MAX_DEFERRED_DELTAS)], None)
