"""Received blocks read as slices: whatever the block sizes and core count, a batch's tasks
are a multiple of the cores, and its slices together give every record once, in order."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.rdd import block_sources, slices_per_block
from kubestream.core.tasks import BlockSource, ResultOutput, TaskDescription, run_task
from kubestream.storage.block_manager import BlockManager, serialise


class ListFunctions:
    """A fake FunctionCache whose only function is the collecting result function."""

    def get(self, ref: Any) -> Any:
        return lambda _split, records: list(records)


@dataclass
class BlocksOnlyEnv:
    """A fake TaskEnv holding a real BlockManager: enough for tasks reading local blocks."""

    blocks: BlockManager = field(default_factory=BlockManager)
    functions: ListFunctions = field(default_factory=ListFunctions)
    executor_id: str = "exec-1"


def read(source: BlockSource, env: BlocksOnlyEnv) -> list[Any]:
    task = TaskDescription(1, 1, 0, source, (), ResultOutput(None))  # type: ignore[arg-type]
    result: list[Any] = run_task(task, env)  # type: ignore[arg-type]
    return result


@given(st.lists(st.integers(0, 40), max_size=6), st.integers(1, 8))
def test_a_batch_has_a_multiple_of_the_cores_in_the_fewest_slices(
    sizes: list[int], parallelism: int
) -> None:
    slices = slices_per_block(len(sizes), parallelism)
    assert (len(sizes) * slices) % parallelism == 0 or not sizes
    assert all((len(sizes) * fewer) % parallelism for fewer in range(1, slices))


def test_one_block_is_shared_by_two_cores_and_an_even_count_is_left_whole() -> None:
    assert slices_per_block(1, 2) == 2
    assert slices_per_block(3, 2) == 2
    assert slices_per_block(4, 2) == 1
    assert slices_per_block(2, 3) == 3
    assert slices_per_block(0, 2) == 1


@given(st.lists(st.lists(st.integers(), max_size=30), max_size=5), st.integers(1, 6))
def test_slices_give_every_record_once_in_block_order(
    blocks: list[list[int]], parallelism: int
) -> None:
    env = BlocksOnlyEnv()
    for i, records in enumerate(blocks):
        env.blocks.put(f"input-{i}", serialise(records))
    slices = slices_per_block(len(blocks), parallelism)
    sources = block_sources([(f"input-{i}", (), None) for i in range(len(blocks))], slices)
    parts = [read(source, env) for source in sources if isinstance(source, BlockSource)]
    assert len(parts) == len(blocks) * slices
    assert [r for part in parts for r in part] == [r for block in blocks for r in block]
    for i, records in enumerate(blocks):  # near-equal: sizes differ by at most one record
        sizes = [len(p) for p in parts[i * slices : (i + 1) * slices]]
        assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(records)
    assert math.gcd(len(parts), parallelism) == parallelism or not blocks
