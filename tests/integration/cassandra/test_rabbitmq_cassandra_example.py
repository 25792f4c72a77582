"""examples/rabbitmq_cassandra.py as `kubestream run` runs it, against a real RabbitMQ node
and the real Cassandra, both over TLS, every credential given the way the example's
StreamingJob gives it (a password file, variables, CA files): the table's totals equal a
plain count of what was published, a re-published message counted once."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from cassandra.cluster import Session

from tests.brokers import CassandraServer, RabbitMQBroker, start_rabbitmq
from tests.integration.run_job import start_checkpointed

APP = Path(__file__).resolve().parents[3] / "examples" / "rabbitmq_cassandra.py"
EVENTS = ["click", "view", "buy", "share", "leave"]


@pytest.fixture
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQBroker]:
    broker = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield broker
    finally:
        broker.broker.stop()


def publish(broker: RabbitMQBroker, queue: str, messages: list[tuple[str, str]]) -> None:
    """(message_id, body) pairs, persistent, with publisher confirms."""
    parameters = pika.ConnectionParameters(
        "127.0.0.1",
        broker.port,
        credentials=pika.PlainCredentials(broker.username, broker.password),
    )
    with pika.BlockingConnection(parameters) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.confirm_delivery()
        for message_id, body in messages:
            properties = pika.BasicProperties(delivery_mode=2, message_id=message_id)
            channel.basic_publish("", queue, body.encode(), properties)


@pytest.mark.timeout(300)
def test_the_example_totals_every_published_event_once(
    tmp_path: Path,
    rabbitmq: RabbitMQBroker,
    cassandra_server: CassandraServer,
    cql: Session,
    keyspace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.event_totals (event text PRIMARY KEY, total bigint)")
    password_file = tmp_path / "secrets" / "rabbitmq" / "password"
    password_file.parent.mkdir(parents=True)
    password_file.write_text(rabbitmq.password)
    for name, value in {
        "RABBITMQ_USERNAME": rabbitmq.username,
        "RABBITMQ_PASSWORD_FILE": str(password_file),
        "RABBITMQ_CA_FILE": str(rabbitmq.ca_location),
        "CASSANDRA_USERNAME": cassandra_server.username,
        "CASSANDRA_PASSWORD": cassandra_server.password,
        "CASSANDRA_CA_FILE": str(cassandra_server.ca_location),
    }.items():
        monkeypatch.setenv(name, value)  # the driver and its executors inherit them
    rng = random.Random(21)
    messages = [(uuid.uuid4().hex, rng.choice(EVENTS)) for _ in range(2000)]
    queue = f"events-{uuid.uuid4().hex[:8]}"
    publish(rabbitmq, queue, messages + rng.sample(messages, 100))  # retried publishes
    log = tmp_path / "driver.log"
    with log.open("w") as stderr:
        driver = start_checkpointed(
            APP,
            tmp_path / "checkpoint",
            ["--write-ahead-log", "--duration", "12"],
            [
                "--rabbitmq", f"127.0.0.1:{rabbitmq.tls_port}",
                "--queue", queue,
                "--receivers", "2",
                "--cassandra", f"{cassandra_server.host}:{cassandra_server.port}",
                "--keyspace", keyspace,
            ],
            stderr,
        )  # fmt: skip
    assert driver.wait(timeout=240) == 0, log.read_text()[-3000:]
    rows = cql.execute(f"SELECT event, total FROM {keyspace}.event_totals")
    assert {r.event: r.total for r in rows} == Counter(body for _, body in messages)
    ready_unacked = [
        line.split()[1:]
        for line in rabbitmq.ctl(
            "list_queues", "-q", "name", "messages_ready", "messages_unacknowledged"
        ).splitlines()
        if line.split()[:1] == [queue]
    ]
    assert ready_unacked == [["0", "0"]]
    text = log.read_text()
    assert rabbitmq.password not in text and cassandra_server.password not in text
