"""Kafka direct stream and sink.

The driver plans an offset range per topic-partition for every batch
(planning.py, from the offsets the client reports); executors read exactly
those ranges and stop by position (progress.py). Modules other than client.py
never talk to a broker, so they are unit-tested without one.
"""
