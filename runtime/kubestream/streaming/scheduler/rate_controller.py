"""Spark's PIDRateEstimator: the backpressure rate a source may ingest at, from batch timings.

After each completed batch the estimator compares the rate the job processed
records at with the rate it last allowed, and corrects the allowed rate with a
PID controller: the proportional term is that difference, the integral term is
the backlog (scheduling delay times processing rate, per batch interval), the
derivative term is the change of the error. Gains and the minimum rate default
to Spark's (`spark.streaming.backpressure.pid.*`). The estimator is pure; a
RateController per input stream feeds it and hands its rate to the stream.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kubestream.errors import ConfigError
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.listener import StreamingListener

if TYPE_CHECKING:
    from kubestream.streaming.sources.input_stream import InputDStream


class PIDRateEstimator:
    def __init__(
        self,
        batch_interval: float,
        proportional: float = 1.0,
        integral: float = 0.2,
        derivative: float = 0.0,
        min_rate: float = 100.0,
    ) -> None:
        if batch_interval <= 0:
            raise ConfigError(f"batch_interval must be greater than 0, got {batch_interval}")
        for name, gain in (
            ("proportional", proportional),
            ("integral", integral),
            ("derivative", derivative),
        ):
            if gain < 0:
                raise ConfigError(f"the {name} gain must be at least 0, got {gain}")
        if min_rate <= 0:
            raise ConfigError(f"min_rate must be greater than 0, got {min_rate}")
        self.batch_interval = batch_interval
        self.proportional = proportional
        self.integral = integral
        self.derivative = derivative
        self.min_rate = min_rate
        self._lock = threading.Lock()
        self._first_run = True
        self._latest_time = -1
        self._latest_rate = -1.0
        self._latest_error = -1.0

    def compute(
        self,
        batch_time: int,
        num_records: int,
        processing_time: float,
        scheduling_delay: float,
    ) -> float | None:
        """The new rate in records per second, or None when this batch says nothing new.

        `batch_time` is in milliseconds (as BatchInfo's), the delays in seconds. An
        out-of-order batch, an empty one, or one processed in no time is ignored; the
        first usable batch only sets the starting rate, as in Spark.
        """
        with self._lock:
            if batch_time <= self._latest_time or num_records <= 0 or processing_time <= 0:
                return None
            since_update = (batch_time - self._latest_time) / 1000
            processing_rate = num_records / processing_time
            error = self._latest_rate - processing_rate
            # The backlog, in records per second, that the scheduling delay stands for.
            historical_error = scheduling_delay * processing_rate / self.batch_interval
            d_error = (error - self._latest_error) / since_update
            new_rate = max(
                self.min_rate,
                self._latest_rate
                - self.proportional * error
                - self.integral * historical_error
                - self.derivative * d_error,
            )
            self._latest_time = batch_time
            if self._first_run:
                self._latest_rate = processing_rate
                self._latest_error = 0.0
                self._first_run = False
                return None
            self._latest_rate = new_rate
            self._latest_error = error
            return new_rate


class RateController(StreamingListener):
    """Spark's RateController: one input stream's records and the batch's timings in, the
    stream's new rate limit out (receivers get it on their executor)."""

    def __init__(self, stream: InputDStream, estimator: PIDRateEstimator) -> None:
        self.stream = stream
        self.estimator = estimator

    def on_batch_completed(self, batch: BatchInfo) -> None:
        if batch.processing_time is None or batch.scheduling_delay is None:
            return
        rate = self.estimator.compute(
            batch.batch_time,
            batch.records_per_stream.get(self.stream.id, 0),
            batch.processing_time,
            batch.scheduling_delay,
        )
        if rate is not None:
            self.stream.set_estimated_rate(rate)
