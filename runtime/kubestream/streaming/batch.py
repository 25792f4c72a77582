"""What happened in one batch: the record the scheduler, listeners, metrics and status share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class BatchInfo:
    """One batch, as StreamingListener.on_batch_* and StreamingContext.batches see it.

    Units: batch_time is milliseconds since the epoch (an int, Spark's batch Time);
    every other time is seconds since the epoch (float), every delay seconds.

    Attributes
    ----------
    batch_time : int
        The batch's time, milliseconds since the epoch; a multiple of the batch
        interval after the context's zero time.
    submission_time : float
        When its jobs were generated and queued, seconds since the epoch.
    num_records : int
        Records the batch's input streams read, all streams together.
    records_per_stream : dict[int, int]
        Records read per input stream id.
    processing_start, processing_end : float or None
        When its processing started and ended, seconds since the epoch.
    errors : list[str]
        Why its failed output operations failed; empty when it succeeded.
    output_operations : int
        Output operations (jobs) the batch ran.
    """

    batch_time: int
    submission_time: float
    num_records: int = 0
    records_per_stream: dict[int, int] = field(default_factory=dict)
    processing_start: float | None = None
    processing_end: float | None = None
    errors: list[str] = field(default_factory=list)
    output_operations: int = 0

    @property
    def scheduling_delay(self) -> float | None:
        """Seconds the batch waited for earlier batches to finish."""
        if self.processing_start is None:
            return None
        return max(0.0, self.processing_start - self.submission_time)

    @property
    def processing_time(self) -> float | None:
        """Seconds its processing took."""
        if self.processing_start is None or self.processing_end is None:
            return None
        return self.processing_end - self.processing_start

    @property
    def total_delay(self) -> float | None:
        """Seconds from the batch's time to the end of its processing."""
        if self.processing_end is None:
            return None
        return max(0.0, self.processing_end - self.batch_time / 1000)

    @property
    def failed(self) -> bool:
        """Whether an output operation of the batch failed."""
        return bool(self.errors)

    @property
    def completed(self) -> bool:
        """Whether the batch finished processing, failed or not."""
        return self.processing_end is not None
