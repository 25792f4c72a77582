"""rate_stream: consecutive integers at a fixed rate, generated on the executors.

Replayable: batch t always holds the same range, so it needs no receiver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubestream.rdd import RDD, SourceRDD, range_sources
from kubestream.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.context import StreamingContext


class RateInputDStream(InputDStream):
    def __init__(self, ssc: StreamingContext, records_per_second: float) -> None:
        if records_per_second <= 0:
            raise ValueError(f"records_per_second must be positive, got {records_per_second}")
        super().__init__(ssc)
        self.records_per_second = records_per_second
        self.start_time: int | None = None

    def checkpoint_state(self) -> dict[str, Any]:
        return {"start_time": self.start_time}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.start_time = state["start_time"]

    def _offset(self, batch_time: int) -> int:
        assert self.start_time is not None
        return int((batch_time - self.start_time) * self.records_per_second / 1000)

    def compute(self, batch_time: int) -> RDD | None:
        if self.start_time is None:
            self.start_time = batch_time - self.ssc.batch_interval_ms
        start = self._offset(batch_time - self.ssc.batch_interval_ms)
        stop = self._offset(batch_time)
        self.records_per_batch[batch_time] = stop - start
        engine = self.ssc.engine
        return SourceRDD(engine, range_sources(start, stop, engine.default_parallelism))
