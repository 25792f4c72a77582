"""Executors' reading of planned offset ranges, against the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from kubestream import settings
from kubestream.core import resources
from kubestream.streaming.sources.kafka.client import (
    ConsumerPool,
    KafkaAdmin,
    consumer_config,
    read_range,
)
from kubestream.streaming.sources.kafka.config import ClientConfig
from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition
from kubestream.streaming.sources.kafka.planning import OffsetsLostError, PartitionOffsets
from tests.brokers import KafkaBroker
from tests.integration.kafka.topics import create_topic, delete_records_before, produce


def reader_config(broker: KafkaBroker, isolation: str = "read_committed") -> ClientConfig:
    base = ClientConfig.of({"bootstrap.servers": broker.bootstrap_servers})
    return consumer_config(base, "kubestream-test", isolation)


def test_consecutive_ranges_read_every_record_once_reusing_one_consumer(
    kafka_broker: KafkaBroker,
) -> None:
    topic = create_topic(kafka_broker.bootstrap_servers, 1)
    produce(kafka_broker.bootstrap_servers, topic, [(0, f"k{i}", f"v{i}") for i in range(1000)])
    pool = ConsumerPool(capacity=4)
    config = reader_config(kafka_broker)
    read = []
    for start in range(0, 1000, 250):
        read += list(read_range(config, OffsetRange(topic, 0, start, start + 250), None, pool=pool))
        assert len(pool) == 1
    assert read == [(f"k{i}", f"v{i}") for i in range(1000)]
    pool.close()


def test_the_pool_keeps_as_many_consumers_as_the_executor_setting_and_closes_with_the_job(
    kafka_broker: KafkaBroker,
) -> None:
    topic = create_topic(kafka_broker.bootstrap_servers, 5)
    produce(kafka_broker.bootstrap_servers, topic, [(p, None, f"v{p}") for p in range(5)])
    config = reader_config(kafka_broker)
    pool = ConsumerPool()  # sized by settings.KAFKA_CONSUMER_POOL_SIZE, as the executor's
    try:
        resources.configure(settings.KAFKA_CONSUMER_POOL_SIZE, 2)
        for p in range(5):
            assert list(read_range(config, OffsetRange(topic, p, 0, 1), None, pool=pool)) == [
                (None, f"v{p}")
            ]
            assert len(pool) == min(p + 1, 2)
        resources.configure(settings.KAFKA_CONSUMER_POOL_SIZE, 64)
        for p in range(5):
            list(read_range(config, OffsetRange(topic, p, 0, 1), None, pool=pool))
        assert len(pool) == 5
        assert resources.close_all() == []  # what the executor calls as it exits
        assert len(pool) == 0
    finally:
        resources.configure(
            settings.KAFKA_CONSUMER_POOL_SIZE, settings.KAFKA_CONSUMER_POOL_SIZE.default
        )
        pool.close()


def test_transaction_markers_and_aborted_records_do_not_stall_a_range(
    kafka_broker: KafkaBroker,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic})
    producer.init_transactions()
    expected = []
    for n, commit in enumerate([True, False, True, False]):
        producer.begin_transaction()
        for i in range(5):
            producer.produce(topic, f"{n}-{i}".encode(), partition=0)
        producer.flush()
        if commit:
            producer.commit_transaction()
            expected += [(None, f"{n}-{i}") for i in range(5)]
        else:
            producer.abort_transaction()
    admin = KafkaAdmin(ClientConfig.of({"bootstrap.servers": bootstrap}), "read_committed")
    tp = TopicPartition(topic, 0)
    # 4 transactions of 5 records and a marker each: the last stable offset is 24.
    assert admin.offsets([tp]) == {tp: PartitionOffsets(0, 24)}
    for until in (6, 12, 18, 24):  # ranges ending just past a marker or an aborted record
        got = list(read_range(reader_config(kafka_broker), OffsetRange(topic, 0, 0, until), None))
        assert got == expected[: len(got)]
    assert got == expected


def test_a_compacted_topic_is_read_to_the_end_of_each_range(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(
        bootstrap,
        1,
        **{"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.001"},
    )
    produce(bootstrap, topic, [(0, f"k{i % 10}", f"v{i}") for i in range(200)])
    config = reader_config(kafka_broker)

    def records(from_offset: int, until: int) -> list[tuple[int, bytes | None, bytes | None]]:
        r = OffsetRange(topic, 0, from_offset, until)
        return list(read_range(config, r, lambda m: (m.offset, m.key, m.value)))

    # Compaction runs on closed segments: keep rolling the log until it has run.
    deadline, end = time.monotonic() + 90, 200
    while len(got := records(0, end)) == end and time.monotonic() < deadline:
        produce(bootstrap, topic, [(0, "roll", f"r{end}")])
        end += 1
    assert len(got) < end, "the broker never compacted the topic"
    last = {key: value for _, key, value in got}
    assert {f"k{i}".encode(): last[f"k{i}".encode()] for i in range(10)} == {
        f"k{i}".encode(): f"v{190 + i}".encode() for i in range(10)
    }
    # A range wholly inside compacted-away offsets ends, empty.
    offsets = [o for o, _, _ in got]
    gap = next(i for i in range(len(offsets)) if offsets[i] != i)
    assert records(gap, offsets[gap]) == []
    assert records(gap, offsets[gap] + 1) == [got[gap]]


def test_records_deleted_before_reading_fail_loudly_or_are_skipped(
    kafka_broker: KafkaBroker,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [(0, None, f"v{i}") for i in range(100)])
    delete_records_before(bootstrap, topic, 0, 60)
    config = reader_config(kafka_broker)
    with pytest.raises(
        OffsetsLostError,
        match=f"topic '{topic}' partition 0: wanted offset 10,"
        r" available \[60, 100\)",
    ):
        list(read_range(config, OffsetRange(topic, 0, 10, 80), None))
    got = list(read_range(config, OffsetRange(topic, 0, 10, 80), None, fail_on_data_loss=False))
    assert got == [(None, f"v{i}") for i in range(60, 80)]


def test_a_record_that_is_not_utf8_is_named(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"ok", partition=0)
    producer.produce(topic, b"\xff\xfe", partition=0)
    producer.flush(30)
    with pytest.raises(ValueError, match=f"{topic}-0@1 is not UTF-8.*message_handler="):
        list(read_range(reader_config(kafka_broker), OffsetRange(topic, 0, 0, 2), None))
    raw = list(
        read_range(reader_config(kafka_broker), OffsetRange(topic, 0, 0, 2), lambda m: m.value)
    )
    assert raw == [b"ok", b"\xff\xfe"]
