"""rate_stream: consecutive integers at a fixed rate, generated on the executors.

A direct source, like Kafka's direct stream: the records available at a batch
time follow from the clock, and each batch reads from where the previous one
stopped, at most its rate limit's worth. Replayable: the range of every batch
since the last checkpoint is kept, so a recovered driver reads the same records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubestream.core.rdd import RDD, SourceRDD, range_sources
from kubestream.errors import require
from kubestream.streaming.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


class RateInputDStream(InputDStream):
    supports_rate_limit = True

    def __init__(self, env: StreamingEnv, records_per_second: float) -> None:
        number = isinstance(records_per_second, int | float) and not isinstance(
            records_per_second, bool
        )
        require(
            number and records_per_second > 0,
            "records_per_second",
            records_per_second,
            "a positive number",
        )
        super().__init__(env)
        self.records_per_second = records_per_second
        self.start_time: int | None = None
        self.consumed = 0
        self.ranges: dict[int, tuple[int, int]] = {}

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "start_time": self.start_time,
            "consumed": self.consumed,
            "ranges": dict(self.ranges),
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.start_time = state["start_time"]
        self.consumed = state["consumed"]
        self.ranges = dict(state["ranges"])

    def available(self, batch_time: int) -> int:
        """Records produced from the stream's start up to `batch_time`."""
        assert self.start_time is not None
        return int((batch_time - self.start_time) * self.records_per_second / 1000)

    def backlog(self, batch_time: int) -> int:
        """Records produced but not yet read: what backpressure leaves in the source."""
        return 0 if self.start_time is None else self.available(batch_time) - self.consumed

    def compute(self, batch_time: int) -> RDD | None:
        if self.start_time is None:
            self.start_time = batch_time - self.env.batch_interval_ms
        if batch_time not in self.ranges:
            stop = self.available(batch_time)
            limit = self.rate_limit
            if limit is not None:
                stop = min(stop, self.consumed + int(limit * self.env.batch_interval))
            self.ranges[batch_time] = (self.consumed, stop)
            self.consumed = stop
        start, stop = self.ranges[batch_time]
        self.records_per_batch[batch_time] = stop - start
        engine = self.env.engine
        return SourceRDD(engine, range_sources(start, stop, engine.default_parallelism))

    def clear_metadata(self, batch_time: int) -> list:  # type: ignore[type-arg]
        for t in [t for t in self.ranges if t <= batch_time - self.history_ms]:
            del self.ranges[t]
        return super().clear_metadata(batch_time)
