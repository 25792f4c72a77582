"""A batch's received blocks read as runs of near-equal length: whatever the block sizes and
core count, the runs together give every record once, in order, one run per core at most,
and no run longer than another by more than one record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.rdd import block_ranges
from kubestream.core.tasks import (
    BlockSource,
    ConcatSource,
    ResultOutput,
    SourceSpec,
    TaskDescription,
    run_task,
)
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


def read(source: SourceSpec, env: BlocksOnlyEnv) -> list[Any]:
    task = TaskDescription(1, 1, 0, source, (), ResultOutput(None))  # type: ignore[arg-type]
    result: list[Any] = run_task(task, env)  # type: ignore[arg-type]
    return result


def runs_of(blocks: list[list[int]], parallelism: int, env: BlocksOnlyEnv) -> list[list[int]]:
    for i, records in enumerate(blocks):
        env.blocks.put(f"input-{i}", serialise(records))
    sized = [(BlockSource(f"input-{i}", ()), len(b)) for i, b in enumerate(blocks)]
    return [read(source, env) for source in block_ranges(sized, parallelism)]


@given(st.lists(st.lists(st.integers(), max_size=40), max_size=6), st.integers(1, 6))
def test_runs_give_every_record_once_in_order_one_per_core_and_near_equal(
    blocks: list[list[int]], parallelism: int
) -> None:
    runs = runs_of(blocks, parallelism, BlocksOnlyEnv())
    assert [r for run in runs for r in run] == [r for block in blocks for r in block]
    total = sum(len(b) for b in blocks)
    assert len(runs) == (min(parallelism, total) if total else min(1, len(blocks)))
    if total:
        assert max(map(len, runs)) - min(map(len, runs)) <= 1


@given(st.lists(st.lists(st.integers(), max_size=20), min_size=1, max_size=5), st.integers(1, 4))
def test_a_count_lower_than_the_records_loses_none(
    blocks: list[list[int]], parallelism: int
) -> None:
    """A block holding more records than its count says is read to its end by one run."""
    env = BlocksOnlyEnv()
    for i, records in enumerate(blocks):
        env.blocks.put(f"input-{i}", serialise(records))
    sized = [(BlockSource(f"input-{i}", ()), len(b) // 2) for i, b in enumerate(blocks)]
    runs = [read(source, env) for source in block_ranges(sized, parallelism)]
    assert sorted(r for run in runs for r in run) == sorted(r for block in blocks for r in block)


def test_one_large_block_is_shared_and_a_run_may_span_blocks() -> None:
    sized = [(BlockSource("a", ()), 10)]
    assert block_ranges(sized, 2) == [
        BlockSource("a", (), None, 0, 5),
        BlockSource("a", (), None, 5),
    ]
    sized = [(BlockSource("a", ()), 3), (BlockSource("b", ()), 3), (BlockSource("c", ()), 2)]
    assert block_ranges(sized, 2) == [
        ConcatSource((BlockSource("a", ()), BlockSource("b", (), None, 0, 1))),
        ConcatSource((BlockSource("b", (), None, 1), BlockSource("c", ()))),
    ]
