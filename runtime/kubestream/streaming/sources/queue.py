"""queue_stream: a list of batches handed out one per batch interval, for tests and demos."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kubestream.core.rdd import RDD, UnionRDD
from kubestream.errors import ConfigError
from kubestream.streaming.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


class QueueInputDStream(InputDStream):
    def __init__(
        self,
        env: StreamingEnv,
        batches: Iterable[Sequence[Any] | RDD],
        one_at_a_time: bool = True,
        default: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(env)
        self.queue: deque[list[Any] | RDD] = deque(
            b if isinstance(b, RDD) else list(b) for b in batches
        )
        self.one_at_a_time = one_at_a_time
        self.default = list(default) if default is not None else None

    def checkpoint_state(self) -> dict[str, Any]:
        raise ConfigError(
            "queue_stream cannot be checkpointed (its batches live only in the driver's memory); "
            "use text_file_stream, rate_stream or a receiver, or run without --checkpoint"
        )

    def push(self, batch: Sequence[Any] | RDD) -> None:
        """Queue one more batch, its records or an RDD (from any thread, while running)."""
        self.queue.append(batch if isinstance(batch, RDD) else list(batch))

    def compute(self, batch_time: int) -> RDD | None:
        records: list[Any]
        if self.queue:
            if self.one_at_a_time:
                head = self.queue.popleft()
                if isinstance(head, RDD):
                    return head
                records = head
            else:
                batches = list(self.queue)
                self.queue.clear()
                engine = self.env.engine
                rdds = [b if isinstance(b, RDD) else engine.parallelize(b) for b in batches]
                self.records_per_batch[batch_time] = sum(
                    len(b) for b in batches if not isinstance(b, RDD)
                )
                return UnionRDD(self.env.engine, rdds)
        elif self.default is not None:
            records = self.default
        else:
            return self.env.engine.empty_rdd()
        self.records_per_batch[batch_time] = len(records)
        return self.env.engine.parallelize(records)
