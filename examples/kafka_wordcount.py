"""Running word totals over a Kafka topic, resumable from a checkpoint.

    kubestream run examples/kafka_wordcount.py --checkpoint /tmp/ckpt -- \\
        --bootstrap-servers 127.0.0.1:9092 --topic lines --out /tmp/out \\
        [--sink-topic totals [--transactional-id wordcount-totals]]

Reads each record's value as a line of words (direct stream: offset ranges in
the checkpoint, no receiver). Writes each batch's counts to OUT/counts-<ms>/ and
the running totals to OUT/totals-<ms>/; with --sink-topic also each batch's
counts to that topic as (word, count) records, exactly once with
--transactional-id. SASL credentials come from the environment
(KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD, e.g. from the job's spec.secretRefs) and
are passed by reference (``${env:...}``), so each process reads them itself and the
password travels in no task or checkpoint; KAFKA_CA_FILE names the CA bundle that
verifies the brokers (e.g. a Secret mounted by spec.secretMounts).
examples/kafka-wordcount-job.yaml runs it as a StreamingJob.
"""

from __future__ import annotations

import argparse
import operator
import os

from kubestream import StreamingContext


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def kafka_params(bootstrap_servers: str) -> dict[str, str]:
    params = {"bootstrap.servers": bootstrap_servers}
    if os.environ.get("KAFKA_SASL_USERNAME"):
        params |= {
            "security.protocol": os.environ.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            "sasl.mechanism": os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            "sasl.username": "${env:KAFKA_SASL_USERNAME}",
            "sasl.password": "${env:KAFKA_SASL_PASSWORD}",
        }
    if os.environ.get("KAFKA_CA_FILE"):
        params["ssl.ca.location"] = os.environ["KAFKA_CA_FILE"]
    return params


def build(ssc: StreamingContext, args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="kafka_wordcount")
    parser.add_argument("--bootstrap-servers", required=True, help="host:port[,host:port...]")
    parser.add_argument("--topic", required=True, action="append", help="topic to read")
    parser.add_argument("--out", required=True, help="directory for per-batch outputs")
    parser.add_argument("--sink-topic", help="also write each batch's counts to this topic")
    parser.add_argument("--transactional-id", help="write to --sink-topic exactly once")
    parser.add_argument("--max-rate-per-partition", type=float)
    options = parser.parse_args(args)

    params = kafka_params(options.bootstrap_servers)
    lines = ssc.kafka_stream(
        options.topic, params, max_rate_per_partition=options.max_rate_per_partition
    )
    words = lines.flat_map(lambda kv: kv[1].split()).map(lambda w: (w, 1))
    counts = words.reduce_by_key(operator.add)
    counts.save_as_text_files(os.path.join(options.out, "counts"))
    counts.update_state_by_key(add_to_total).save_as_text_files(os.path.join(options.out, "totals"))
    if options.sink_topic:
        counts.write_to_kafka(
            options.sink_topic,
            params,
            value=lambda wc: f"{wc[0]} {wc[1]}",
            transactional_id=options.transactional_id,
        )
