"""The only module that talks to Kafka brokers (through confluent-kafka / librdkafka).

Driver side, `KafkaAdmin` lists topics and partitions, reports each partition's
earliest and latest offsets (the last stable offset under read_committed),
finds offsets by timestamp and commits a group's offsets for lag monitoring.
Executor side, `read_range` reads one planned offset range with a consumer from
`ConsumerPool`, a bounded per-process cache of assigned consumers, each lent to
one thread at a time; a consumer that ended where the next range starts reads
on without a seek, from the records it already fetched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
)
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from kubestream import settings
from kubestream.core import resources
from kubestream.streaming.sources.kafka.config import ClientConfig
from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition
from kubestream.streaming.sources.kafka.planning import DataLoss, OffsetsLostError, PartitionOffsets
from kubestream.streaming.sources.kafka.progress import RangeProgress

log = logging.getLogger(__name__)


class BrokerClient(Protocol):
    """What the driver asks of the brokers; tests may pass an in-memory fake."""

    def partitions(self) -> dict[str, int]:
        """Partition count of every topic in the cluster."""
        ...

    def offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, PartitionOffsets]:
        """Earliest and latest offsets of `tps`; partitions that vanished are left out."""
        ...

    def offsets_for_times(
        self, tps: Sequence[TopicPartition], ms: int
    ) -> dict[TopicPartition, int | None]:
        """First offset at or after `ms` per partition; None when no record is that new."""
        ...

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        """Store `positions` as the group's committed offsets."""
        ...

    def close(self) -> None: ...


class KafkaAdmin:
    """BrokerClient over confluent-kafka's AdminClient."""

    def __init__(self, config: ClientConfig, isolation_level: str, timeout: float = 30.0) -> None:
        admin_settings: dict[str, str | int | float | bool] = {
            k: v for k, v in config.to_dict().items() if not k.startswith(_CONSUMER_ONLY)
        }
        self._admin = AdminClient(admin_settings, logger=log)
        self._isolation = (
            IsolationLevel.READ_COMMITTED
            if isolation_level == "read_committed"
            else IsolationLevel.READ_UNCOMMITTED
        )
        self._timeout = timeout

    def partitions(self) -> dict[str, int]:
        metadata = self._admin.list_topics(timeout=self._timeout)
        return {
            name: len(topic.partitions)
            for name, topic in metadata.topics.items()
            if topic.error is None
        }

    def _list(
        self, tps: Sequence[TopicPartition], spec: OffsetSpec
    ) -> dict[TopicPartition, int | None]:
        if not tps:
            return {}
        request = {KafkaTopicPartition(tp.topic, tp.partition): spec for tp in tps}
        futures = self._admin.list_offsets(
            request, isolation_level=self._isolation, request_timeout=self._timeout
        )
        found: dict[TopicPartition, int | None] = {}
        for ktp, future in futures.items():
            try:
                offset = future.result().offset
            except KafkaException as e:
                if e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                raise
            found[TopicPartition(ktp.topic, ktp.partition)] = None if offset < 0 else offset
        return found

    def offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, PartitionOffsets]:
        earliest = self._list(tps, OffsetSpec.earliest())
        latest = self._list(tps, OffsetSpec.latest())
        return {
            tp: PartitionOffsets(earliest[tp] or 0, latest[tp] or 0)
            for tp in tps
            if tp in earliest and tp in latest
        }

    def offsets_for_times(
        self, tps: Sequence[TopicPartition], ms: int
    ) -> dict[TopicPartition, int | None]:
        found = self._list(tps, OffsetSpec.for_timestamp(ms))
        return {tp: found.get(tp) for tp in tps}

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        request = ConsumerGroupTopicPartitions(
            group,
            [KafkaTopicPartition(tp.topic, tp.partition, o) for tp, o in sorted(positions.items())],
        )
        futures = self._admin.alter_consumer_group_offsets([request], request_timeout=self._timeout)
        for future in futures.values():
            errors = [tp.error for tp in future.result().topic_partitions if tp.error]
            if errors:
                raise KafkaException(errors[0])

    def close(self) -> None:
        """Nothing to release: AdminClient closes when collected."""


_CONSUMER_ONLY = ("isolation.level", "group.id", "enable.", "auto.", "fetch.", "max.poll")


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    """One record as a `message_handler` sees it: bytes as stored, timestamp in Unix ms."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


MessageHandler = Callable[[KafkaMessage], Any]


def decode_key_value(message: Message) -> tuple[str | None, str | None]:
    """The default record: (key, value) decoded as UTF-8; None stays None."""
    key, value = message.key(), message.value()
    try:
        return (
            None if key is None else key.decode(),
            None if value is None else value.decode(),
        )
    except UnicodeDecodeError as e:
        raise ValueError(
            f"Kafka record {message.topic()}-{message.partition()}@{message.offset()} is not"
            f" UTF-8 ({e.reason} at byte {e.start}): pass message_handler= to kafka_stream to"
            " read other encodings or raw bytes"
        ) from None


def to_kafka_message(message: Message) -> KafkaMessage:
    _, timestamp = message.timestamp()
    return KafkaMessage(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp=timestamp,
        key=message.key(),
        value=message.value(),
        headers=_headers(message),
    )


def _headers(message: Message) -> tuple[tuple[str, bytes | None], ...]:
    headers = message.headers() or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return tuple((k, v.encode() if isinstance(v, str) else v) for k, v in pairs)


@dataclass
class _Lent:
    consumer: Consumer
    next_offset: int | None
    """Where the consumer's fetch position stands for the cached partition, if known."""


class ConsumerPool:
    """Assigned consumers by (settings, topic-partition), at most `capacity` kept idle.

    A consumer is lent to one reader at a time; a second reader of the same
    partition meanwhile gets a consumer of its own, closed when it is returned
    to a full pool. Least recently used consumers are closed first. Without a
    `capacity`, the process's setting (`settings.KAFKA_CONSUMER_POOL_SIZE`, which the
    executor passes in through `kubestream.core.resources`) decides, read at each
    return. The pool closes its consumers when the process's job stops.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self._capacity = capacity
        self._idle: OrderedDict[tuple[str, TopicPartition], _Lent] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        if self._capacity is not None:
            return self._capacity
        return resources.setting(settings.KAFKA_CONSUMER_POOL_SIZE)

    @contextmanager
    def lend(self, config: ClientConfig, tp: TopicPartition) -> Iterator[_Lent]:
        key = (config.fingerprint, tp)
        with self._lock:
            lent = self._idle.pop(key, None)
        if lent is None:
            resources.on_close(f"kafka consumers {id(self)}", self.close)
            lent = _Lent(Consumer(config.to_dict(), logger=log), None)
        healthy = False
        try:
            yield lent
            healthy = True
        finally:
            if healthy:
                self._return(key, lent)
            else:
                lent.consumer.close()

    def _return(self, key: tuple[str, TopicPartition], lent: _Lent) -> None:
        evicted: list[_Lent] = []
        capacity = self.capacity
        with self._lock:
            if key in self._idle:
                evicted.append(lent)
            else:
                self._idle[key] = lent
            while len(self._idle) > capacity:
                evicted.append(self._idle.popitem(last=False)[1])
        for old in evicted:
            old.consumer.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for lent in idle:
            lent.consumer.close()


POOL = ConsumerPool()
"""The executor process's consumers, shared by every Kafka stream's tasks."""


def consumer_config(config: ClientConfig, group: str, isolation_level: str) -> ClientConfig:
    """Settings of an executor's range consumer: assigned, never subscribed nor committing,
    with out-of-range offsets reported instead of silently reset, and at most 8 MB
    prefetched per cached consumer (librdkafka's default is 64 MB) unless set."""
    return config.with_(
        **{
            "queued.max.messages.kbytes": config.get("queued.max.messages.kbytes", "8192"),
            "group.id": group,
            "isolation.level": isolation_level,
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "error",
        }
    )


def read_range(
    config: ClientConfig,
    offset_range: OffsetRange,
    handler: MessageHandler | None,
    *,
    fail_on_data_loss: bool = True,
    poll_timeout: float = 120.0,
    pool: ConsumerPool = POOL,
    on_data_loss: Callable[[DataLoss, int], None] | None = None,
) -> Iterator[Any]:
    """Every record of `offset_range` through `handler` (default: (key, value) as UTF-8).

    Done when the consumer's position reaches until_offset (progress.py). Raises
    OffsetsLostError when the range's records were deleted before being read
    (unless `fail_on_data_loss` is False: then it skips them with a warning and
    tells `on_data_loss` the loss and how many of the range's records it skipped),
    TimeoutError after `poll_timeout` seconds without progress, KafkaException
    for other broker errors; the task then fails and is retried.
    """
    progress = RangeProgress(offset_range.from_offset, offset_range.until_offset)
    if progress.done:
        return
    tp = offset_range.topic_partition
    ktp = KafkaTopicPartition(tp.topic, tp.partition)
    with pool.lend(config, tp) as lent:
        consumer = lent.consumer
        if lent.next_offset != offset_range.from_offset:
            consumer.assign([KafkaTopicPartition(tp.topic, tp.partition, offset_range.from_offset)])
        lent.next_offset = None
        last_progress = time.monotonic()
        while not progress.done:
            before = progress.position
            batch = consumer.consume(min(progress.until_offset - progress.position, 1000), 0.2)
            for message in batch:
                error = message.error()
                if error is not None:
                    _on_error(
                        error, message, consumer, ktp, progress, fail_on_data_loss, on_data_loss
                    )
                elif progress.accept(message.offset() or 0):
                    if handler is None:
                        yield decode_key_value(message)
                    else:
                        yield handler(to_kafka_message(message))
                if progress.done:
                    break
            if not batch:
                (position,) = consumer.position([ktp])
                if position.offset >= 0:
                    progress.advance(position.offset)
            if progress.position > before:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > poll_timeout:
                raise TimeoutError(
                    f"no record of {tp} for {poll_timeout:.0f}s at offset {progress.position},"
                    f" reading up to {offset_range.until_offset}: is the broker reachable?"
                )
        (position,) = consumer.position([ktp])
        # Left fetching: the next batch's range is usually already here. (Pausing it costs a
        # fetch wait of about 0.5 s on resume; the prefetch limit bounds its memory instead.)
        lent.next_offset = position.offset if position.offset >= 0 else None


def _on_error(
    error: KafkaError,
    message: Message,
    consumer: Consumer,
    ktp: KafkaTopicPartition,
    progress: RangeProgress,
    fail_on_data_loss: bool,
    on_data_loss: Callable[[DataLoss, int], None] | None,
) -> None:
    code = error.code()
    if code == KafkaError._PARTITION_EOF:
        progress.advance(message.offset() or 0)
        return
    if code in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
        earliest, latest = consumer.get_watermark_offsets(ktp, timeout=30, cached=False)
        tp = TopicPartition(ktp.topic, ktp.partition)
        loss = DataLoss(tp, progress.position, PartitionOffsets(earliest, latest))
        if fail_on_data_loss:
            raise OffsetsLostError((loss,))
        skipped = min(earliest, progress.until_offset) - progress.position
        log.warning("KafkaDataLoss: skipping %d lost records: %s", skipped, loss)
        if on_data_loss is not None:
            on_data_loss(loss, skipped)
        progress.advance(earliest)
        if not progress.done:
            consumer.assign([KafkaTopicPartition(ktp.topic, ktp.partition, progress.position)])
        return
    raise KafkaException(error)
