"""Kafka benchmarks on this machine, written as JSON (never asserted in tests).

    .venv/bin/python benchmarks/kafka_throughput.py [--lines N] [--out FILE.json]

Starts the repository's Kafka broker (hack/brokers/kafka.sh, timed), fills a
4-partition topic with the word-count workload, then measures on the same topic:
a running word count in kubestream (kafka_stream, update_state_by_key, 2
executor processes, every updated total delivered to the driver) and in PySpark
Structured Streaming local[2] (when pyspark is installed), both by wall clock
from start to the last result; a plain confluent-kafka consumer loop counting
words in one process and in two (two partitions each); kubestream's Kafka sink
(write_to_kafka, idempotent producer, 2 executors) and a plain producer loop.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import operator
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from tests.brokers import start_kafka  # noqa: E402

from kubestream import StreamingContext  # noqa: E402
from throughput import Cluster  # noqa: E402
from workload import make_lines  # noqa: E402

PARTITIONS = 4
# Spark's Kafka connector: 4.1.0's token provider is not on Maven Central, its patch
# release is, and connectors keep binary compatibility within a minor version.
SPARK_KAFKA_CONNECTOR = "4.1.1"


def create_topic(bootstrap: str, partitions: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def plain_produce(bootstrap: str, topic: str, lines: list[str]) -> dict[str, Any]:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    started = time.perf_counter()
    for i, line in enumerate(lines):
        while True:
            try:
                producer.produce(topic, line.encode(), partition=i % PARTITIONS)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    seconds = time.perf_counter() - started
    return {"records_per_second": len(lines) / seconds, "seconds": seconds}


def _consume_count(
    bootstrap: str, topic: str, partitions: list[int], ends: list[int]
) -> Counter[str]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"plain-{uuid.uuid4().hex[:6]}"}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    counts: Counter[str] = Counter()
    remaining = {p: ends[p] for p in partitions}
    while any(remaining.values()):
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            counts.update(message.value().decode().split())
            remaining[message.partition()] -= 1
    consumer.close()
    return counts


def _consume_args(args: tuple[str, str, list[int], list[int]]) -> Counter[str]:
    return _consume_count(*args)


def plain_consume(bootstrap: str, topic: str, lines: int, processes: int) -> dict[str, Any]:
    ends = [lines // PARTITIONS + (1 if p < lines % PARTITIONS else 0) for p in range(PARTITIONS)]
    started = time.perf_counter()
    if processes == 1:
        total = _consume_count(bootstrap, topic, list(range(PARTITIONS)), ends)
    else:
        shares = [list(range(PARTITIONS))[i::processes] for i in range(processes)]
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            total = Counter()
            for part in pool.map(_consume_args, [(bootstrap, topic, s, ends) for s in shares]):
                total.update(part)
    seconds = time.perf_counter() - started
    return {"records_per_second": lines / seconds, "seconds": seconds, "words": total.total()}


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def kubestream_stateful(cluster: Cluster, bootstrap: str, topic: str, lines: int) -> dict[str, Any]:
    """Running word count over the topic, every updated (word, total) delivered to the driver;
    wall clock from start to the last result, beside the batches' processing time."""
    ssc = StreamingContext(0.5, engine=cluster.engine)
    stream = ssc.kafka_stream(topic, {"bootstrap.servers": bootstrap})
    read = [0]
    totals: dict[str, int] = {}
    last = [0.0]

    def deliver(batch_time: int, rdd: Any) -> None:
        totals.update(rdd.collect())
        read[0] += sum(r.count for r in stream.offset_ranges(batch_time))
        last[0] = time.perf_counter()

    (
        stream.flat_map(lambda kv: kv[1].split())
        .map(lambda w: (w, 1))
        .reduce_by_key(operator.add)
        .update_state_by_key(add_to_total)
        .foreach_rdd(deliver)
    )
    started = time.perf_counter()
    ssc.start()
    deadline = time.monotonic() + 600
    while read[0] < lines and time.monotonic() < deadline:
        time.sleep(0.01)
    ssc.stop(stop_engine=False)
    busy = [b for b in ssc.batches if b.completed and b.num_records > 0]
    processing = sum(b.processing_time or 0 for b in busy)
    wall = last[0] - started
    return {
        "records_per_second": lines / wall,
        "seconds": wall,
        "processing_seconds": processing,
        "records_per_second_of_processing": lines / processing,
        "batches": len(busy),
        "words": sum(totals.values()),
    }


def kubestream_sink(cluster: Cluster, bootstrap: str, topic: str, lines: int) -> dict[str, Any]:
    target = create_topic(bootstrap, PARTITIONS)
    ssc = StreamingContext(2.0, engine=cluster.engine)
    stream = ssc.kafka_stream(topic, {"bootstrap.servers": bootstrap})
    stream.map(lambda kv: kv[1].upper()).write_to_kafka(target, {"bootstrap.servers": bootstrap})
    ssc.start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        done = [b for b in ssc.batches if b.completed]
        if sum(b.num_records for b in done) >= lines:
            break
        time.sleep(0.05)
    ssc.stop(stop_engine=False)
    busy = [b for b in ssc.batches if b.completed and b.num_records > 0]
    seconds = sum(b.processing_time or 0 for b in busy)
    return {"records_per_second": lines / seconds, "seconds": seconds, "batches": len(busy)}


def pyspark_kafka(bootstrap: str, topic: str, lines: int) -> dict[str, Any]:
    """PySpark Structured Streaming, local[2]: the same running word count from the topic's
    start (trigger availableNow), each batch's updated counts collected to the driver. Its
    Kafka connector comes from Maven Central through Spark's own resolver, cached."""
    try:
        import pyspark  # noqa: PLC0415 - optional
        from pyspark.sql import SparkSession  # noqa: PLC0415 - optional
        from pyspark.sql import functions as f  # noqa: PLC0415 - optional
    except ImportError:
        return {"skipped": "pyspark is not installed (pip install pyspark to include it)"}
    package = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_KAFKA_CONNECTOR}"
    cache = Path(os.environ.get("KUBESTREAM_CACHE", Path.home() / ".cache/kubestream"))
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.jars.packages", package)
        .config("spark.jars.ivy", str(cache / "ivy"))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    totals: dict[str, int] = {}
    last = [0.0]

    def deliver(frame: Any, _batch_id: int) -> None:
        totals.update((r["word"], r["count"]) for r in frame.collect())
        last[0] = time.perf_counter()

    counts = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .select(f.explode(f.split(f.col("value").cast("string"), " ")).alias("word"))
        .groupBy("word")
        .count()
    )
    checkpoint = tempfile.mkdtemp(prefix="kubestream-bench-spark-")
    started = time.perf_counter()
    query = (
        counts.writeStream.outputMode("update")
        .foreachBatch(deliver)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    spark.stop()
    wall = last[0] - started
    return {
        "version": pyspark.__version__,
        "connector": package,
        "records_per_second": lines / wall,
        "seconds": wall,
        "words": sum(totals.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/kafka.json"))
    args = parser.parse_args()
    lines = make_lines(args.lines)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": os.getloadavg()[0],
        },
        "workload": {"lines": args.lines, "words_per_line": 10, "partitions": PARTITIONS},
    }
    broker = start_kafka(Path(tempfile.mkdtemp(prefix="kubestream-kafka-bench-")))
    try:
        results["broker_start_seconds"] = broker.broker.startup_seconds
        bootstrap = broker.bootstrap_servers
        topic = create_topic(bootstrap, PARTITIONS)
        results["plain_producer"] = plain_produce(bootstrap, topic, lines)
        results["plain_consumer_1_process"] = plain_consume(bootstrap, topic, args.lines, 1)
        results["plain_consumer_2_processes"] = plain_consume(bootstrap, topic, args.lines, 2)
        cluster = Cluster(2)
        try:
            results["kubestream_stateful_wordcount_2_executors"] = kubestream_stateful(
                cluster, bootstrap, topic, args.lines
            )
            results["kubestream_sink_2_executors"] = kubestream_sink(
                cluster, bootstrap, topic, args.lines
            )
        finally:
            cluster.close()
        results["pyspark_structured_streaming_kafka"] = pyspark_kafka(bootstrap, topic, args.lines)
    finally:
        broker.broker.stop()
    floor = results["plain_consumer_2_processes"]["records_per_second"]
    ours = results["kubestream_stateful_wordcount_2_executors"]["records_per_second"]
    results["kubestream_vs_plain_consumer_2_processes"] = ours / floor
    spark = results["pyspark_structured_streaming_kafka"].get("records_per_second")
    if spark:
        results["kubestream_vs_pyspark"] = ours / spark
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
