"""Running word totals written to Cassandra, resumable from a checkpoint.

    kubestream run examples/cassandra_wordcount.py --checkpoint /tmp/ckpt -- \\
        --dir /tmp/words --contact-point 127.0.0.1:9042 --keyspace demo

Needs two tables in KEYSPACE:

    CREATE TABLE word_totals (word text PRIMARY KEY, total bigint);
    CREATE TABLE word_counts (batch_time bigint, word text, count bigint,
                              PRIMARY KEY (batch_time, word));

Every batch writes each word's running total to word_totals and its own counts to
word_counts. Writes carry the batch time as their timestamp, so a batch replayed
after a crash rewrites the same cells: killed and restarted on the same checkpoint
directory, the tables end as an uninterrupted run leaves them. Credentials come
from the environment (CASSANDRA_USERNAME / CASSANDRA_PASSWORD, e.g. from the job's
Secret) when CASSANDRA_USERNAME is set, and TLS is on, verified against the CA
in CASSANDRA_CA (PEM text), when that is set. examples/cassandra-wordcount-job.yaml
runs it as a StreamingJob.
"""

from __future__ import annotations

import argparse
import operator
import os
from typing import Any

from kubestream import CassandraConnection, StreamingContext


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def connection(contact_point: str) -> CassandraConnection:
    host, port = contact_point.rsplit(":", 1)
    auth = "CASSANDRA_USERNAME" in os.environ
    return CassandraConnection(
        contact_points=(host,),
        port=int(port),
        username_env="CASSANDRA_USERNAME" if auth else None,
        password_env="CASSANDRA_PASSWORD" if auth else None,
        ssl_ca_env="CASSANDRA_CA" if "CASSANDRA_CA" in os.environ else None,
    )


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="cassandra_wordcount")
    parser.add_argument("--dir", required=True, help="directory to watch for new text files")
    parser.add_argument("--contact-point", required=True, help="host:port of the native protocol")
    parser.add_argument("--keyspace", required=True)
    options = parser.parse_args(args)
    cassandra = connection(options.contact_point)

    words = ssc.text_file_stream(options.dir).flat_map(str.split).map(lambda w: (w, 1))
    counts = words.reduce_by_key(operator.add)
    counts.update_state_by_key(add_to_total).save_to_cassandra(
        options.keyspace, "word_totals", ["word", "total"], connection=cassandra
    )

    def with_batch_time(batch_time: int, rdd: Any) -> Any:
        return rdd.map(lambda wc: (batch_time, *wc))

    counts.transform(with_batch_time).save_to_cassandra(
        options.keyspace, "word_counts", ["batch_time", "word", "count"], connection=cassandra
    )
