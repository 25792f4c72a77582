"""Streams fed by receivers on executors; each batch reads the blocks allocated to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubestream.core.rdd import RDD, SourceRDD, block_sources, slices_per_block
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
        specs = []
        preferred = []
        for block in blocks:
            holders = block.holders()
            live = (engine.executor_address(e) for e in holders)
            locations = tuple(address for address in live if address is not None)
            specs.append((block.block_id, locations, block.wal_path))
            preferred.append(holders)
        slices = slices_per_block(len(specs), engine.default_parallelism)
        preferred = [holders for holders in preferred for _ in range(slices)]
        return SourceRDD(engine, block_sources(specs, slices), preferred)
