"""What happened in one batch: the record the scheduler, listeners, metrics and status share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class BatchInfo:
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
        if self.processing_start is None or self.processing_end is None:
            return None
        return self.processing_end - self.processing_start

    @property
    def total_delay(self) -> float | None:
        """From the batch's time to the end of its processing."""
        if self.processing_end is None:
            return None
        return max(0.0, self.processing_end - self.batch_time / 1000)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def completed(self) -> bool:
        return self.processing_end is not None
