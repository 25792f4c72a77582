"""kafka_stream and write_to_kafka on real executor processes against the real broker,
checked against plain-Python references over what was produced."""

from __future__ import annotations

import json
import logging
import operator
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from kubestream.driver.status import context_status
from kubestream.streaming.sources.kafka.offsets import OffsetRange
from kubestream.streaming.sources.kafka.stream import KafkaRangeReader
from tests.brokers import KafkaBroker
from tests.integration.conftest import Cluster, start_cluster, stop_cluster
from tests.integration.kafka.topics import (
    add_partitions,
    create_topic,
    delete_records_before,
    produce,
)

WORDS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 8))) for _ in range(n)]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def read_topic(bootstrap: str, topic: str, partitions: int) -> list[tuple[str | None, str]]:
    """Every committed record of `topic`, with a plain consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([KafkaTopicPartition(topic, p, 0) for p in range(partitions)])
    records, at_end = [], set()
    deadline = time.monotonic() + 60
    while len(at_end) < partitions and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is None:
            continue
        if message.error():
            at_end.add(message.partition())
            continue
        at_end.discard(message.partition())
        key = message.key()
        records.append((key.decode() if key else None, message.value().decode()))
    consumer.close()
    return records


def done_records(ssc: StreamingContext) -> int:
    """Input records of completed batches: each batch's outputs, the sink's too, are done."""
    return sum(b.num_records for b in ssc.batches if b.completed)


def contiguous(ranges: list[OffsetRange]) -> dict[tuple[str, int], tuple[int, int]]:
    """Per partition, the span the ranges cover; fails if two overlap or leave a gap."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in sorted(ranges, key=lambda r: (r.topic, r.partition, r.from_offset)):
        key = (r.topic, r.partition)
        if key in spans:
            assert spans[key][1] == r.from_offset, f"gap or overlap at {r}"
            spans[key] = (spans[key][0], r.until_offset)
        else:
            spans[key] = (r.from_offset, r.until_offset)
    return spans


def word_counts(stream: Any) -> Any:
    return (
        stream.flat_map(lambda kv: kv[1].split()).map(lambda w: (w, 1)).reduce_by_key(operator.add)
    )


def test_word_count_over_four_partitions_is_exact_with_an_executor_killed(
    fresh_cluster: Cluster, kafka_broker: KafkaBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 4)
    lines = texts(4000, seed=1)
    produce(bootstrap, topic, [(i % 4, None, t) for i, t in enumerate(lines[:2000])])
    ssc = StreamingContext(0.5, engine=fresh_cluster.engine)
    group = f"wc-{topic}"
    stream = ssc.kafka_stream(
        topic, {"bootstrap.servers": bootstrap, "group.id": group}, max_rate_per_partition=1000
    )
    totals: Counter[str] = Counter()
    ranges: list[OffsetRange] = []

    def collect(batch_time: int, rdd: RDD) -> None:
        totals.update(dict(rdd.collect()))
        ranges.extend(stream.offset_ranges(batch_time))

    word_counts(stream).foreach_rdd(collect)
    ssc.start()
    try:
        wait_for(lambda: bool(totals), "a first batch")
        fresh_cluster.executors.kill("exec-2")
        produce(bootstrap, topic, [(i % 4, None, t) for i, t in enumerate(lines[2000:])])
        expected = Counter(w for t in lines for w in t.split())
        wait_for(lambda: sum(totals.values()) >= expected.total(), "every word")
        assert not [b.errors for b in ssc.batches if b.failed]
    finally:
        ssc.stop(stop_engine=False)
    assert totals == expected
    assert contiguous(ranges) == {(topic, p): (0, 1000) for p in range(4)}
    # max_rate_per_partition: 1000/s over 0.5 s batches.
    assert max(r.count for r in ranges) <= 500
    committed = Consumer({"bootstrap.servers": bootstrap, "group.id": group}).committed(
        [KafkaTopicPartition(topic, p) for p in range(4)], timeout=30
    )
    assert [tp.offset for tp in committed] == [1000] * 4


def test_a_partition_added_mid_stream_is_read_from_its_start(
    cluster: Cluster, kafka_broker: KafkaBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [(0, None, f"a{i}") for i in range(50)])
    ssc = StreamingContext(0.3, engine=cluster.engine)
    stream = ssc.kafka_stream(
        [topic], {"bootstrap.servers": bootstrap}, partition_discovery_interval=0.5
    )
    seen: list[str] = []
    stream.map(lambda kv: kv[1]).foreach_rdd(lambda rdd: seen.extend(rdd.collect()))
    ssc.start()
    try:
        wait_for(lambda: len(seen) == 50, "the first partition")
        add_partitions(bootstrap, topic, 2)
        produce(bootstrap, topic, [(1, None, f"b{i}") for i in range(30)])
        wait_for(lambda: len(seen) >= 80, "the new partition")
    finally:
        ssc.stop(stop_engine=False)
    assert sorted(seen) == sorted([f"a{i}" for i in range(50)] + [f"b{i}" for i in range(30)])


def read_from_offset_10(
    cluster: Cluster, bootstrap: str, topic: str, skip: bool
) -> tuple[StreamingContext, Any, list[str]]:
    ssc = StreamingContext(0.3, engine=cluster.engine)
    stream = ssc.kafka_stream(
        topic,
        {"bootstrap.servers": bootstrap},
        starting_offsets={(topic, 0): 10},
        fail_on_data_loss=not skip,
    )
    seen: list[str] = []
    stream.map(lambda kv: kv[1]).foreach_rdd(lambda rdd: seen.extend(rdd.collect()))
    ssc.start()
    try:
        if skip:
            wait_for(lambda: len(seen) == 40, "the records still there")
        else:
            wait_for(lambda: any(b.failed for b in ssc.batches), "a failed batch")
    finally:
        ssc.stop(stop_engine=False)
    return ssc, stream, seen


def test_records_deleted_before_they_were_read_fail_loudly_or_are_skipped_and_counted(
    cluster: Cluster, kafka_broker: KafkaBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [(0, None, f"v{i}") for i in range(100)])
    delete_records_before(bootstrap, topic, 0, 60)
    ssc, _, seen = read_from_offset_10(cluster, bootstrap, topic, skip=False)
    failed = next(b for b in ssc.batches if b.failed)
    assert f"topic '{topic}' partition 0: wanted offset 10, available [60, 100)" in str(
        failed.errors
    )
    assert seen == []
    _, stream, seen = read_from_offset_10(cluster, bootstrap, topic, skip=True)
    assert seen == [f"v{i}" for i in range(60, 100)]
    assert stream.input_details()["lost_records"] == 50


def test_records_deleted_after_planning_are_skipped_by_the_executor_and_counted_by_the_driver(
    cluster: Cluster, kafka_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The batch is planned over [0, 100), then retention takes [0, 60) before the executor
    process reads: it skips them, and its report reaches the driver's counters and status."""
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 1)
    produce(bootstrap, topic, [(0, None, f"v{i}") for i in range(100)])
    ssc = StreamingContext(0.3, engine=cluster.engine)
    stream = ssc.kafka_stream(topic, {"bootstrap.servers": bootstrap}, fail_on_data_loss=False)
    stream.start()
    try:
        rdd = stream.compute(1_000)
        assert rdd is not None
        assert [(r.from_offset, r.until_offset) for r in stream.offset_ranges(1_000)] == [(0, 100)]
        delete_records_before(bootstrap, topic, 0, 60)
        with caplog.at_level(logging.WARNING, "kubestream.streaming.sources.kafka.stream"):
            got = rdd.map(lambda kv: kv[1]).collect()
    finally:
        stream.stop()
    assert got == [f"v{i}" for i in range(60, 100)]
    details = stream.input_details()
    assert (details["lost_records"], details["data_loss_events"]) == (60, 1)
    assert f"topic '{topic}' partition 0: wanted offset 0" in details["last_data_loss"]
    assert "KafkaDataLoss: stream" in caplog.text and "found by an executor" in caplog.text
    (view,) = [
        i for i in context_status(ssc, "kafka-test")["inputs"] if i["stream_id"] == stream.id
    ]
    assert view["lost_records"] == 60


def test_sink_writes_every_count_and_the_sasl_password_never_shows(
    cluster: Cluster, kafka_broker: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, sink = create_topic(bootstrap, 2), create_topic(bootstrap, 3)
    lines = texts(500, seed=2)
    produce(bootstrap, source, [(i % 2, None, t) for i, t in enumerate(lines)])
    sasl = {
        "bootstrap.servers": kafka_broker.sasl_bootstrap_servers,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": kafka_broker.sasl_username,
        "sasl.password": kafka_broker.sasl_password,
    }
    ssc = StreamingContext(0.3, engine=cluster.engine)
    stream = ssc.kafka_stream(source, sasl)
    counts = word_counts(stream)
    written: Counter[str] = Counter()
    counts.foreach_rdd(lambda rdd: written.update(dict(rdd.collect())))
    counts.write_to_kafka(sink, sasl)
    expected = Counter(w for t in lines for w in t.split())
    with caplog.at_level(logging.DEBUG):
        ssc.start()
        try:
            wait_for(lambda: written == expected, "every count")
            wait_for(lambda: done_records(ssc) >= len(lines), "the batches' Kafka output")
            document = context_status(ssc, "kafka-test")
            status = json.dumps(document)
        finally:
            ssc.stop(stop_engine=False)
    got: Counter[str] = Counter()
    in_sink = read_topic(bootstrap, sink, 3)
    for key, value in in_sink:
        assert key is not None
        got[key] += int(value)
    assert got == expected
    (output,) = (o for o in document["outputs"] if o["kind"] == "kafka")
    assert (output["topic"], output["rows_written"]) == (sink, len(in_sink))
    assert kafka_broker.sasl_password not in caplog.text
    assert kafka_broker.sasl_password not in status
    assert '"total_lag": 0' in status


def test_sasl_over_tls_with_credentials_by_reference_as_a_streaming_job_passes_them(
    kafka_broker: KafkaBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SASL_SSL: SCRAM over TLS verified against the test CA. The password is an environment
    variable (what spec.secretRefs makes) and the user name a file in a directory (what
    spec.secretMounts makes); the settings carry only references to them, so no task, log
    or status holds the password."""
    secrets_dir = tmp_path / "kafka-credentials"
    secrets_dir.mkdir()
    (secrets_dir / "username").write_text(kafka_broker.sasl_username + "\n")
    monkeypatch.setenv("KAFKA_PASSWORD", kafka_broker.sasl_password)
    bootstrap = kafka_broker.bootstrap_servers
    source, sink = create_topic(bootstrap, 2), create_topic(bootstrap, 2)
    lines = texts(300, seed=5)
    produce(bootstrap, source, [(i % 2, None, t) for i, t in enumerate(lines)])
    params = {
        "bootstrap.servers": kafka_broker.sasl_ssl_bootstrap_servers,
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(kafka_broker.ca_location),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": f"${{directory:{secrets_dir}:username}}",
        "sasl.password": "${env:KAFKA_PASSWORD}",
    }
    cluster = start_cluster()  # after setenv: executor processes inherit the variable
    try:
        ssc = StreamingContext(0.3, engine=cluster.engine)
        stream = ssc.kafka_stream(source, params)
        counts = word_counts(stream)
        written: Counter[str] = Counter()
        counts.foreach_rdd(lambda rdd: written.update(dict(rdd.collect())))
        counts.write_to_kafka(sink, params)
        expected = Counter(w for t in lines for w in t.split())
        with caplog.at_level(logging.DEBUG):
            ssc.start()
            try:
                wait_for(lambda: written == expected, "every count")
                wait_for(lambda: done_records(ssc) >= len(lines), "the batches' Kafka output")
                status = json.dumps(context_status(ssc, "kafka-test"))
            finally:
                ssc.stop(stop_engine=False)
    finally:
        stop_cluster(cluster)
    got: Counter[str] = Counter()
    for key, value in read_topic(bootstrap, sink, 2):
        assert key is not None
        got[key] += int(value)
    assert got == expected
    password = kafka_broker.sasl_password
    assert password not in caplog.text and password not in status
    task_source = KafkaRangeReader(
        stream.reader_config, OffsetRange(source, 0, 0, 1), False, True, 1
    )
    assert password.encode() not in cloudpickle.dumps(task_source)
    # A reference that cannot be read names the setting and the variable, not a value.
    monkeypatch.delenv("KAFKA_PASSWORD")
    with pytest.raises(ValueError, match=r"'sasl\.password': environment variable KAFKA_PASSWORD"):
        stream.reader_config.to_dict()


def test_a_stream_reads_and_writes_over_tls(cluster: Cluster, kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, sink = create_topic(bootstrap, 2), create_topic(bootstrap, 1)
    produce(bootstrap, source, [(i % 2, f"k{i}", f"v{i}") for i in range(200)])
    tls = {
        "bootstrap.servers": kafka_broker.ssl_bootstrap_servers,
        "security.protocol": "SSL",
        "ssl.ca.location": str(kafka_broker.ca_location),
    }
    ssc = StreamingContext(0.3, engine=cluster.engine)
    stream = ssc.kafka_stream(source, tls)
    seen: list[tuple[str, str]] = []
    stream.foreach_rdd(lambda rdd: seen.extend(rdd.collect()))
    stream.write_to_kafka(sink, tls)
    ssc.start()
    try:
        wait_for(lambda: len(seen) >= 200, "every record")
        wait_for(lambda: done_records(ssc) >= 200, "the sink")
    finally:
        ssc.stop(stop_engine=False)
    expected = sorted((f"k{i}", f"v{i}") for i in range(200))
    assert sorted(seen) == expected
    assert sorted(read_topic(bootstrap, sink, 1)) == expected
