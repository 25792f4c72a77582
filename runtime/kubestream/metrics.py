"""Names and buckets shared by the driver's and the executors' Prometheus metrics.

Every metric is called `kubestream_...` and created against a registry its caller
passes in, so a process serves its own registry at `/metrics` and a test reads the
very same one (driver.metrics, executor.metrics).
"""

from __future__ import annotations

PREFIX = "kubestream_"

# From a 1 ms task or empty batch to a 5-minute backlog.
SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
RECORDS_BUCKETS = (0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
