"""Streams fed by receivers on executors; each batch reads the blocks allocated to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubestream.core.rdd import RDD, SourceRDD, block_ranges
from kubestream.core.tasks import BlockSource, ConcatSource, SourceSpec
from kubestream.executor.receiver import Receiver
from kubestream.streaming.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


class ReceiverInputDStream(InputDStream):
    supports_rate_limit = True

    def __init__(self, env: StreamingEnv, receiver: Receiver) -> None:
        super().__init__(env)
        self.receiver = receiver
        env.receiver_tracker.register(self.id, receiver)

    def rate_limit_changed(self) -> None:
        self.env.receiver_tracker.set_rate_limit(self.id, self.rate_limit)

    def compute(self, batch_time: int) -> RDD | None:
        engine = self.env.engine
        blocks = self.env.receiver_tracker.blocks_of_batch(batch_time, self.id)
        self.records_per_batch[batch_time] = sum(b.records for b in blocks)
        if not blocks:
            return engine.empty_rdd()
        holders: dict[str, tuple[str, ...]] = {}
        sized: list[tuple[BlockSource, int]] = []
        for block in blocks:
            holders[block.block_id] = block.holders()
            live = (engine.executor_address(e) for e in block.holders())
            locations = tuple(address for address in live if address is not None)
            sized.append((BlockSource(block.block_id, locations, block.wal_path), block.records))
        sources = block_ranges(sized, engine.default_parallelism)
        preferred = [_holders_of(source, holders) for source in sources]
        return SourceRDD(engine, sources, preferred)


def _holders_of(source: SourceSpec, holders: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Executors holding a run's blocks, those of its first block first."""
    parts = source.parts if isinstance(source, ConcatSource) else (source,)
    found: dict[str, None] = {}
    for part in parts:
        if isinstance(part, BlockSource):
            found.update(dict.fromkeys(holders[part.block_id]))
    return tuple(found)
