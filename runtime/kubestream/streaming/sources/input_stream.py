"""Base of every input stream: what the graph starts, stops and asks for records counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubestream.streaming.dstream import DStream

if TYPE_CHECKING:
    from kubestream.streaming.batch import BatchInfo
    from kubestream.streaming.env import StreamingEnv


class InputDStream(DStream):
    def __init__(self, env: StreamingEnv) -> None:
        super().__init__(env)
        env.graph.add_input(self)
        self.records_per_batch: dict[int, int] = {}
        self.history_ms = 0
        self.max_rate: float | None = None
        self.estimated_rate: float | None = None

    supports_rate_limit = False
    """Whether this stream can read slower than its source produces (backpressure, max rate)."""

    @property
    def rate_limit(self) -> float | None:
        """Records per second this stream may read now: the backpressure estimate, capped by
        the fixed maximum; None for no limit."""
        limits = [r for r in (self.max_rate, self.estimated_rate) if r is not None]
        return min(limits) if limits else None

    def set_estimated_rate(self, rate: float) -> None:
        """Take the backpressure estimate, records per second (from the RateController)."""
        self.estimated_rate = rate
        self.rate_limit_changed()

    def rate_limit_changed(self) -> None:
        """Hook for streams that must pass a new limit on (receivers on executors)."""

    def start(self) -> None:
        """Called once when the context starts, before the first batch."""

    def stop(self) -> None:
        """Called once when the context stops."""

    def checkpoint_state(self) -> dict[str, Any]:
        """What a restarted driver needs to read exactly what this stream read: positions."""
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Take back positions from a checkpoint (before start)."""

    def batch_completed(self, info: BatchInfo) -> None:
        """After a batch's outputs ran and its checkpoint was written (failed or not: see
        info.failed); must not block, since the next batch's clean-up waits for it."""

    def input_details(self) -> dict[str, Any]:
        """What the status document shows of this input beyond its rate, merged into its entry
        under "inputs": a source with a backlog its "lag" {partition: records not yet planned}
        and "lost_records"; a directory its counters and "problem" (None when healthy)."""
        return {}

    def clear_metadata(self, batch_time: int) -> list:  # type: ignore[type-arg]
        """As DStream's; also forgets the record counts of batches up to batch_time."""
        for t in [t for t in self.records_per_batch if t <= batch_time]:
            del self.records_per_batch[t]
        return super().clear_metadata(batch_time)
