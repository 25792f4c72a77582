"""Publishing to and inspecting the test node's queues with pika (the plain client)."""

from __future__ import annotations

import uuid

import pika

from tests.brokers import RabbitMQBroker


def parameters(broker: RabbitMQBroker) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        "127.0.0.1",
        broker.port,
        credentials=pika.PlainCredentials(broker.username, broker.password),
    )


def new_queue(broker: RabbitMQBroker) -> str:
    """A fresh durable queue's name."""
    name = f"q-{uuid.uuid4().hex[:8]}"
    with pika.BlockingConnection(parameters(broker)) as connection:
        connection.channel().queue_declare(name, durable=True)
    return name


def publish(broker: RabbitMQBroker, queue: str, bodies: list[str], ids: bool = True) -> None:
    """Persistent messages with publisher confirms (pipelined: one wait per call), each with
    its body as message_id when `ids`."""
    with pika.BlockingConnection(parameters(broker)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            properties = pika.BasicProperties(delivery_mode=2, message_id=body if ids else None)
            channel.basic_publish("", queue, body.encode(), properties)


def depth(broker: RabbitMQBroker, queue: str) -> tuple[int, int]:
    """(ready, unacknowledged) messages of the queue, as the broker counts them."""
    for line in broker.ctl(
        "list_queues", "-q", "name", "messages_ready", "messages_unacknowledged"
    ).splitlines():
        fields = line.split()
        if fields and fields[0] == queue:
            return int(fields[1]), int(fields[2])
    raise AssertionError(f"queue {queue} not listed")


def drain(broker: RabbitMQBroker, queue: str) -> list[str]:
    """Every body left in the queue, taken out with basic_get and acknowledged."""
    bodies: list[str] = []
    with pika.BlockingConnection(parameters(broker)) as connection:
        channel = connection.channel()
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return bodies
            bodies.append(body.decode())
