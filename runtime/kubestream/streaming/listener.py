"""StreamingListener: hooks for batch and receiver events; users may register their own."""

from __future__ import annotations

from kubestream.streaming.batch import BatchInfo


class StreamingListener:
    """Override the hooks you need; every hook defaults to doing nothing."""

    def on_batch_submitted(self, batch: BatchInfo) -> None:
        """A batch's jobs were generated and queued."""

    def on_batch_started(self, batch: BatchInfo) -> None:
        """The batch's first job started running."""

    def on_batch_completed(self, batch: BatchInfo) -> None:
        """Every job of the batch ended; batch.errors is non-empty if any failed."""

    def on_output_operation_started(self, batch: BatchInfo, output_id: int) -> None:
        """One output operation of a batch started."""

    def on_output_operation_completed(
        self, batch: BatchInfo, output_id: int, error: str | None
    ) -> None:
        """One output operation of a batch ended, with its error if it failed."""

    def on_receiver_started(self, stream_id: int, executor_id: str) -> None:
        """A receiver started on an executor."""

    def on_receiver_error(self, stream_id: int, message: str) -> None:
        """A receiver reported an error."""

    def on_receiver_stopped(self, stream_id: int) -> None:
        """A receiver stopped."""
