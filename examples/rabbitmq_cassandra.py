"""Event totals from a RabbitMQ queue written to Cassandra, resumable from a checkpoint.

    kubestream run examples/rabbitmq_cassandra.py --checkpoint /tmp/ckpt --write-ahead-log -- \\
        --rabbitmq 127.0.0.1:5672 --queue events --cassandra 127.0.0.1:9042 --keyspace demo

Needs one table in KEYSPACE:

    CREATE TABLE event_totals (event text PRIMARY KEY, total bigint);

Each message body is an event name. A message that carries an AMQP message_id is
counted once even when the broker redelivers it (receivers drop repeats by id), and
with the write-ahead log no acknowledged message is lost when the driver dies. Each
batch writes the running totals with its batch time as the write timestamp, so a
batch replayed after a crash rewrites the same cells.

Secrets are read where each connection opens, never passed in the job:
RabbitMQ: user RABBITMQ_USERNAME, password in the file RABBITMQ_PASSWORD_FILE, TLS
verified against RABBITMQ_CA_FILE when set. Cassandra: CASSANDRA_USERNAME and
CASSANDRA_PASSWORD variables, TLS verified against CASSANDRA_CA_FILE when set.
examples/rabbitmq-cassandra-job.yaml runs it as a StreamingJob with these from Secrets.
"""

from __future__ import annotations

import argparse
import operator
import os

from kubestream import CassandraConnection, StreamingContext


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def cassandra(address: str) -> CassandraConnection:
    host, port = host_port(address)
    auth = "CASSANDRA_USERNAME" in os.environ
    return CassandraConnection(
        contact_points=(host,),
        port=port,
        username_env="CASSANDRA_USERNAME" if auth else None,
        password_env="CASSANDRA_PASSWORD" if auth else None,
        ssl_ca_file=os.environ.get("CASSANDRA_CA_FILE"),
    )


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="rabbitmq_cassandra")
    parser.add_argument("--rabbitmq", required=True, help="host:port of the AMQP listener")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--receivers", type=int, default=1)
    parser.add_argument("--cassandra", required=True, help="host:port of the native protocol")
    parser.add_argument("--keyspace", required=True)
    options = parser.parse_args(args)

    host, port = host_port(options.rabbitmq)
    events = ssc.rabbitmq_stream(
        host,
        port,
        options.queue,
        username=os.environ.get("RABBITMQ_USERNAME", "guest"),
        password_file=os.environ.get("RABBITMQ_PASSWORD_FILE"),
        ca_file=os.environ.get("RABBITMQ_CA_FILE"),
        receivers=options.receivers,
        id_header="message_id",
    )
    counts = events.map(lambda event: (event.strip(), 1)).reduce_by_key(operator.add)
    counts.update_state_by_key(add_to_total).save_to_cassandra(
        options.keyspace,
        "event_totals",
        ["event", "total"],
        connection=cassandra(options.cassandra),
    )
