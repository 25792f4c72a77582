"""The driver's web UI: a page like Spark's Streaming tab, the status JSON and /metrics."""
