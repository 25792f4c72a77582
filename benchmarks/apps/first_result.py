"""Benchmark app: prints a small count every batch, to time start-up to the first result."""

from __future__ import annotations

from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    ssc.rate_stream(1000).map(lambda x: x % 10).count_by_value().pprint(3)
