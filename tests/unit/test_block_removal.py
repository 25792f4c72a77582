"""Removing a received block by id leaves blocks whose ids merely start with it."""

from __future__ import annotations

from kubestream.core.protocol import RemoveBlocks
from kubestream.executor.core import ExecutorCore


def test_exact_ids_and_prefixes_remove_only_what_they_name() -> None:
    core = ExecutorCore("exec-1", lambda message: None, lambda a, ids: [], lambda a, i, b: None)
    try:
        for block_id in ("input-0-x-1", "input-0-x-10", "input-0-x-11", "shuffle_3_0_1", "rdd_7_0"):
            core.blocks.put(block_id, b"records")
        core.handle(RemoveBlocks(prefixes=("shuffle_3_",), block_ids=("input-0-x-1",)))
        assert sorted(core.blocks.ids()) == ["input-0-x-10", "input-0-x-11", "rdd_7_0"]
    finally:
        core.stop()
