"""A task's value the driver cannot unpickle (its class comes from a module only the
executors have) fails the job with the reason, and the engine runs the next job; the
error used to escape to the transport's thread, which logged it and left the job waiting."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubestream import StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.engine import Engine
from kubestream.core.rdd import RDD
from kubestream.errors import JobFailedError
from kubestream.executor.in_process import InProcessExecutors
from tests.stateful_cases import add_running


def _import_executor_only_module() -> None:
    raise ModuleNotFoundError("No module named 'executor_only'")


class FromExecutorOnlyModule:
    """Pickles on an executor; unpickling it imports what the driver lacks."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _import_executor_only_module, ()


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine()
    executors = InProcessExecutors(engine, 2)
    yield engine
    executors.stop()


def test_a_result_the_driver_cannot_unpickle_fails_its_job_naming_the_cause(
    engine: Engine,
) -> None:
    broken = engine.parallelize(range(4), 2).map(lambda _: FromExecutorOnlyModule())
    with pytest.raises(JobFailedError, match="cannot be unpickled on the driver") as failed:
        broken.collect()
    assert "executor_only" in str(failed.value)
    assert engine.parallelize(range(4), 2).map(lambda x: x * 2).collect() == [0, 2, 4, 6]


def test_a_state_read_the_driver_cannot_unpickle_fails_its_batch_and_keeps_the_update() -> None:
    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock, on_batch_failure="continue")
    failing = 1002000
    collected: dict[int, list[tuple[str, int]]] = {}

    def output(batch_time: int, rdd: RDD[tuple[str, int]]) -> None:
        if batch_time == failing:
            rdd.map(lambda _: FromExecutorOnlyModule()).collect()
        else:
            collected[batch_time] = sorted(rdd.collect())

    batches = [[("a", 1)], [("a", 2), ("b", 5)], [("a", 3)]]
    ssc.queue_stream(batches).map_with_state(StateSpec.of(add_running)).foreach_rdd(output)
    ssc.start()
    try:
        for batch_time in (1001000, failing, 1003000):
            clock.advance(1.0)
            info = ssc.wait_for_batch(batch_time, 60)
            assert info.failed == (batch_time == failing), info.errors
        assert "cannot be unpickled on the driver" in " ".join(
            ssc.wait_for_batch(failing, 1).errors
        )
        assert collected == {1001000: [("a", 1)], 1003000: [("a", 6)]}
    finally:
        ssc.stop()
