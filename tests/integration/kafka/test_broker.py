"""The test broker itself: what the Kafka tests rely on, checked with a real client."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import KafkaBroker


def create_topic(bootstrap: str, partitions: int, **config: str) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
    futures[name].result(timeout=30)
    return name


def sasl_config(broker: KafkaBroker, password: str) -> dict[str, str]:
    return {
        "bootstrap.servers": broker.sasl_bootstrap_servers,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": broker.sasl_username,
        "sasl.password": password,
    }


def test_records_round_trip_in_order_per_partition(kafka_broker: KafkaBroker) -> None:
    topic = create_topic(kafka_broker.bootstrap_servers, 3)
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    sent = [(i % 3, f"v{i}".encode()) for i in range(300)]
    for partition, value in sent:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": kafka_broker.bootstrap_servers, "group.id": "round-trip"}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    got: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    while sum(map(len, got.values())) < len(sent):
        message = consumer.poll(10)
        assert message is not None and message.error() is None
        got[message.partition()].append(message.value())
    consumer.close()
    assert got == {p: [v for q, v in sent if q == p] for p in range(3)}


def test_sasl_listener_accepts_the_scram_user_and_refuses_a_wrong_password(
    kafka_broker: KafkaBroker,
) -> None:
    admin = AdminClient(sasl_config(kafka_broker, kafka_broker.sasl_password))
    assert len(admin.list_topics(timeout=30).brokers) == 1
    wrong = AdminClient(sasl_config(kafka_broker, "not-" + kafka_broker.sasl_password))
    with pytest.raises(KafkaException):
        wrong.list_topics(timeout=5)


def test_tls_listener_is_verified_against_the_test_ca(kafka_broker: KafkaBroker) -> None:
    tls = {"bootstrap.servers": kafka_broker.ssl_bootstrap_servers, "security.protocol": "SSL"}
    admin = AdminClient({**tls, "ssl.ca.location": str(kafka_broker.ca_location)})
    assert len(admin.list_topics(timeout=30).brokers) == 1
    # The system's CAs do not know the test CA: the handshake fails.
    with pytest.raises(KafkaException):
        AdminClient(tls).list_topics(timeout=5)


def test_sasl_ssl_listener_needs_both_the_ca_and_the_scram_password(
    kafka_broker: KafkaBroker,
) -> None:
    config = {
        "bootstrap.servers": kafka_broker.sasl_ssl_bootstrap_servers,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(kafka_broker.ca_location),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": kafka_broker.sasl_username,
        "sasl.password": kafka_broker.sasl_password,
    }
    assert len(AdminClient(config).list_topics(timeout=30).brokers) == 1
    for wrong in (
        {**config, "sasl.password": "not-" + kafka_broker.sasl_password},
        {k: v for k, v in config.items() if k != "ssl.ca.location"},  # the system CAs
    ):
        with pytest.raises(KafkaException):
            AdminClient(wrong).list_topics(timeout=5)
