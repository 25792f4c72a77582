"""StreamingEnv: what a DStream needs from the application it belongs to.

Streams and sources hold this, not the StreamingContext: the engine that makes
their RDDs, the graph they join, the batch interval, the partitioners shuffles
share, and the receiver tracker that receiver-based sources register with. The
context builds one and passes it to every stream it creates (Spark's DStreams
reach for the same things through `ssc`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubestream.core.engine import Engine
from kubestream.core.ops import HashPartitioner
from kubestream.streaming.graph import DStreamGraph
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker

if TYPE_CHECKING:
    from kubestream.streaming.context import StreamingContext


@dataclass
class StreamingEnv:
    engine: Engine
    graph: DStreamGraph
    receiver_tracker: ReceiverTracker
    batch_interval_ms: int
    _partitioners: dict[int, HashPartitioner] = field(default_factory=dict)
    context: StreamingContext | None = None

    @property
    def batch_interval(self) -> float:
        """The batch interval in seconds."""
        return self.batch_interval_ms / 1000

    def hash_partitioner(self, num_partitions: int) -> HashPartitioner:
        """One partitioner per partition count, so streams shuffled alike are co-partitioned."""
        return self._partitioners.setdefault(num_partitions, HashPartitioner(num_partitions))
