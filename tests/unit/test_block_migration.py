"""A draining executor's blocks are copied to the others and found there afterwards."""

from __future__ import annotations

from kubestream.core.engine import Engine
from kubestream.core.tasks import ExecutorAddress
from kubestream.executor.in_process import InProcessExecutors
from kubestream.storage.block_manager import shuffle_block_id


def test_blocks_move_and_the_driver_looks_for_them_where_they_went() -> None:
    engine = Engine()
    executors = InProcessExecutors(engine, 3)
    try:
        victim = executors.cores["exec-1"]
        victim_address = engine.executor_address("exec-1")
        assert victim_address is not None
        for reduce_index in range(3):
            victim.blocks.put(shuffle_block_id(4, 0, reduce_index), b"map output %d" % reduce_index)
        victim.blocks.put("rdd_9_0", b"state")
        executors.cores["exec-2"].blocks.put("rdd_9_0", b"state")  # its second replica
        engine.map_outputs.register_shuffle(4, 1)
        engine.map_outputs.register_output(4, 0, victim_address)

        engine.start_draining("exec-1")
        result = engine.migrate_blocks("exec-1", timeout=10)

        assert not result.failed
        assert sorted(b for b, _ in result.moves) == sorted(victim.blocks.ids())
        (map_location,) = engine.map_outputs.locations(4)
        assert map_location.executor_id != "exec-1"
        peer = executors.cores[map_location.executor_id]
        assert [peer.blocks.get(shuffle_block_id(4, 0, r)) for r in range(3)] == [
            b"map output 0",
            b"map output 1",
            b"map output 2",
        ], "a map output's blocks were split between peers"
        other = ExecutorAddress("exec-2", "inproc://exec-2")
        located = engine.locate("rdd_9_0", (victim_address, other))
        assert other in located
        assert "exec-1" not in [a.executor_id for a in located]
        assert all(
            executors.cores[a.executor_id].blocks.get("rdd_9_0") == b"state" for a in located
        )
    finally:
        executors.stop()
