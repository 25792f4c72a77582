"""Topics on the test broker, made and filled with confluent-kafka directly (not kubestream)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def create_topic(bootstrap: str, partitions: int, name: str | None = None, **config: str) -> str:
    name = name or f"t-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name].result(timeout=30)
    return name


def add_partitions(bootstrap: str, topic: str, total: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_partitions([NewPartitions(topic, total)])[topic].result(timeout=30)


def delete_records_before(bootstrap: str, topic: str, partition: int, offset: int) -> None:
    """What retention does to old records, on demand: the log now starts at `offset`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, partition, offset)])
    for future in futures.values():
        future.result(timeout=30)


def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[int, str | None, str]],
    **settings: str,
) -> None:
    """Each (partition, key, value) in order, acknowledged by the broker before returning."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, **settings})
    for partition, key, value in records:
        producer.produce(topic, value.encode(), key.encode() if key else None, partition=partition)
        producer.poll(0)
    assert producer.flush(60) == 0
