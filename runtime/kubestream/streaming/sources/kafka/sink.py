"""write_to_kafka: an output operation writing each batch's records to a Kafka topic.

At-least-once (the default): every executor writes its partitions with an
idempotent producer (acks=all, no duplicates from the producer's own retries)
and flushes before its task counts as done, so a batch succeeds only once all
its records are on the broker; a task retried after a failure may write some
records again.

Exactly-once Kafka to Kafka (`transactional_id=`): the driver writes the
batch's records and the source's end offsets for the batch, tagged with the
batch time, in one Kafka transaction (records and offsets commit together or not
at all). A replayed batch whose transaction already committed finds its batch
time in the committed offsets of group `transactional_id` and is not written
again; a restarted driver's producer fences the old one's open transaction. The
batch's output passes through the driver, so this suits aggregated outputs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from kubestream.core import resources
from kubestream.streaming.sources.kafka.config import ClientConfig
from kubestream.streaming.sources.kafka.records import RecordShape

if TYPE_CHECKING:
    from kubestream.core.rdd import RDD
    from kubestream.streaming.sources.kafka.stream import KafkaInputDStream

log = logging.getLogger(__name__)

Partitioner = Callable[[Any], int]

_producers: dict[str, Producer] = {}
_producers_lock = threading.Lock()


def idempotent_producer_config(config: ClientConfig) -> ClientConfig:
    return config.with_(
        **{
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": config.get("linger.ms", "5"),
        }
    )


def shared_producer(config: ClientConfig) -> Producer:
    """This process's producer for `config` (librdkafka producers are thread-safe)."""
    with _producers_lock:
        producer = _producers.get(config.fingerprint)
        if producer is None:
            # Delivery reports for failed records only: a callback per record costs throughput.
            settings = {**config.to_dict(), "delivery.report.only.error": True}
            producer = Producer(settings, logger=log)
            _producers[config.fingerprint] = producer
            resources.on_close("kafka producers", close_producers)
        return producer


def close_producers(timeout: float = 10.0) -> None:
    """Deliver what the process's producers still hold (up to `timeout` s each), then drop
    them; the next write opens a new one. Called when the job stops."""
    with _producers_lock:
        producers = list(_producers.values())
        _producers.clear()
    for producer in producers:
        left = producer.flush(timeout)
        if left:
            log.warning("a Kafka producer closed with %d records undelivered", left)


class DeliveryFailures:
    """Collects delivery reports that carry an error (only those arrive)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            self.count += 1
            if self.first is None:
                self.first = f"{message.topic()}-{message.partition()}: {error}"


def produce_all(
    producer: Producer,
    topic: str,
    records: Iterator[Any],
    shape: RecordShape,
    partitioner: Partitioner | None,
    on_delivery: DeliveryFailures,
) -> int:
    """Queue every record (waiting while the local queue is full); returns how many."""
    n = 0
    for record in records:
        key, value, headers = shape.split(record)
        kwargs: dict[str, Any] = {"on_delivery": on_delivery}
        if headers:
            kwargs["headers"] = headers
        if partitioner is not None:
            kwargs["partition"] = partitioner(record)
        while True:
            try:
                producer.produce(topic, value, key, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
    return n


@dataclass(frozen=True)
class ProducePartition:
    """Runs on executors (map_partitions): writes a partition, flushes it, and yields how
    many records it wrote."""

    config: ClientConfig
    topic: str
    shape: RecordShape
    partitioner: Partitioner | None
    flush_timeout: float

    def __call__(self, records: Iterator[Any]) -> Iterator[int]:
        producer = shared_producer(self.config)
        failures = DeliveryFailures()
        n = produce_all(producer, self.topic, records, self.shape, self.partitioner, failures)
        left = producer.flush(self.flush_timeout)
        if left:
            raise TimeoutError(
                f"{left} records for Kafka topic {self.topic!r} not acknowledged in"
                f" {self.flush_timeout:.0f}s"
            )
        if failures.count:
            raise KafkaException(
                f"{failures.count} of {n} records not written to Kafka topic {self.topic!r};"
                f" first: {failures.first}"
            )
        return iter((n,))


class KafkaSink:
    """The at-least-once output operation: fn(batch_time, rdd) on the driver;
    `rows_written` counts over the sink's life in this driver process (a task retried
    after a failure may have written some records again, uncounted)."""

    def __init__(
        self,
        config: ClientConfig,
        topic: str,
        shape: RecordShape,
        partitioner: Partitioner | None,
        flush_timeout: float = 120.0,
    ) -> None:
        self.write = ProducePartition(
            idempotent_producer_config(config), topic, shape, partitioner, flush_timeout
        )
        self.rows_written = 0

    def output_details(self) -> dict[str, Any]:
        """For the status document and metrics (DStreamGraph.output_details)."""
        return {"kind": "kafka", "topic": self.write.topic, "rows_written": self.rows_written}

    def __call__(self, batch_time: int, rdd: RDD) -> None:
        self.rows_written += sum(rdd.map_partitions(self.write).collect())


class TransactionalKafkaSink:
    """The exactly-once output operation: one transaction per batch, from the driver;
    `rows_written` counts the records of committed transactions in this driver process."""

    def __init__(
        self,
        config: ClientConfig,
        topic: str,
        shape: RecordShape,
        partitioner: Partitioner | None,
        transactional_id: str,
        source: KafkaInputDStream,
        timeout: float = 60.0,
    ) -> None:
        self.config = config.with_(
            **{"transactional.id": transactional_id, "enable.idempotence": "true", "acks": "all"}
        )
        self.consumer_config = config.with_(
            **{
                "group.id": transactional_id,
                "isolation.level": "read_committed",
                "enable.auto.commit": "false",
            }
        )
        self.topic = topic
        self.shape = shape
        self.partitioner = partitioner
        self.transactional_id = transactional_id
        self.source = source
        self.timeout = timeout
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self.rows_written = 0

    def output_details(self) -> dict[str, Any]:
        """For the status document and metrics (DStreamGraph.output_details)."""
        return {
            "kind": "kafka-transactional",
            "topic": self.topic,
            "rows_written": self.rows_written,
        }

    def _clients(self) -> tuple[Producer, Consumer]:
        if self._producer is None or self._consumer is None:
            producer = Producer(self.config.to_dict(), logger=log)
            # Fences a previous driver's producer and aborts its open transaction.
            producer.init_transactions(self.timeout)
            self._producer = producer
            self._consumer = Consumer(self.consumer_config.to_dict(), logger=log)
        return self._producer, self._consumer

    def written_through(self, consumer: Consumer, tps: list[KafkaTopicPartition]) -> int | None:
        """The newest batch time committed by this sink's transactions, if any."""
        committed = consumer.committed(tps, timeout=self.timeout)
        times = [int(tp.metadata) for tp in committed if tp.metadata and tp.metadata.isdigit()]
        return max(times, default=None)

    def __call__(self, batch_time: int, rdd: RDD) -> None:
        producer, consumer = self._clients()
        ranges = self.source.offset_ranges(batch_time)
        marks = [
            KafkaTopicPartition(r.topic, r.partition, r.until_offset, metadata=str(batch_time))
            for r in ranges
        ]
        if not marks:
            raise RuntimeError(
                f"batch {batch_time}: the source read no partition, so the transactional sink"
                " has nothing to tag its output with"
            )
        done = self.written_through(
            consumer, [KafkaTopicPartition(m.topic, m.partition) for m in marks]
        )
        if done is not None and done >= batch_time:
            log.warning(
                "batch %d was already written to %s by transaction %s; not writing it again",
                batch_time,
                self.topic,
                self.transactional_id,
            )
            return
        records = rdd.collect()
        failures = DeliveryFailures()
        producer.begin_transaction()
        try:
            produce_all(producer, self.topic, iter(records), self.shape, self.partitioner, failures)
            producer.send_offsets_to_transaction(
                marks, consumer.consumer_group_metadata(), self.timeout
            )
            producer.commit_transaction(self.timeout)
        except Exception:
            producer.abort_transaction(self.timeout)
            raise
        if failures.count:
            raise KafkaException(f"{failures.count} records failed: {failures.first}")
        self.rows_written += len(records)
