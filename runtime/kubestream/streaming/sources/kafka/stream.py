"""kafka_stream: Spark's direct Kafka stream, without receivers.

For every batch the driver plans one offset range per topic-partition
(planning.py) and the batch's RDD has one partition per range; executors read
exactly that range (client.read_range: assign and seek, never a group
subscription, so no rebalances). Ranges are kept per batch time in the metadata
checkpoint, so a restarted driver replays unfinished batches over the same
records. After a batch's outputs succeed its end offsets are committed to the
consumer group, for lag tools only: recovery reads the checkpoint, never the
group. A planning error (lost offsets, an unreachable broker) fails that batch
with the error and consumes nothing; the next batch plans again.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubestream.core.input_files import InputEvent
from kubestream.core.ops import MapOp
from kubestream.core.rdd import RDD, SourceRDD
from kubestream.core.tasks import ReaderSource, SourceSpec, TaskEnv
from kubestream.errors import ConfigError
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.sources.input_stream import InputDStream
from kubestream.streaming.sources.kafka.client import (
    BrokerClient,
    KafkaAdmin,
    KafkaMessage,
    MessageHandler,
    consumer_config,
    read_range,
)
from kubestream.streaming.sources.kafka.config import ClientConfig
from kubestream.streaming.sources.kafka.discovery import Subscription
from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition
from kubestream.streaming.sources.kafka.planning import (
    BatchPlan,
    DataLoss,
    plan_batch,
    records_budget,
)
from kubestream.streaming.sources.kafka.starting import (
    FromTimestamp,
    StartingOffsets,
    starting_positions,
    validate_starting_offsets,
)

if TYPE_CHECKING:
    from kubestream.core.engine import Engine
    from kubestream.streaming.env import StreamingEnv

log = logging.getLogger(__name__)

ISOLATION_LEVELS = ("read_committed", "read_uncommitted")
DATA_LOSS = "data_loss"
"""The InputEvent kind of records a task found deleted and skipped (fail_on_data_loss=False)."""


@dataclass(frozen=True, slots=True)
class KafkaRangeReader:
    """A task's source: reads one offset range on the executor (plain-pickled into the task)."""

    config: ClientConfig
    offset_range: OffsetRange
    raw: bool
    fail_on_data_loss: bool
    poll_timeout: float
    stream_id: int = -1

    def read(self, env: TaskEnv, report: Callable[[InputEvent], None]) -> Iterator[Any]:
        handler = _as_message if self.raw else None

        def lost(loss: DataLoss, skipped: int) -> None:
            tp = str(loss.topic_partition)
            report(InputEvent(tp, DATA_LOSS, skipped, str(loss), self.stream_id))

        return read_range(
            self.config,
            self.offset_range,
            handler,
            fail_on_data_loss=self.fail_on_data_loss,
            poll_timeout=self.poll_timeout,
            on_data_loss=lost,
        )


def _as_message(message: KafkaMessage) -> KafkaMessage:
    return message


@dataclass(frozen=True, slots=True)
class HandleMessage:
    """The user's message_handler, with a failure naming the record it failed on."""

    handler: MessageHandler

    def __call__(self, message: KafkaMessage) -> Any:
        try:
            return self.handler(message)
        except Exception as e:
            raise ValueError(
                f"message_handler failed on Kafka record {message.topic}-{message.partition}"
                f"@{message.offset}: {type(e).__name__}: {e}"
            ) from e


class KafkaRDD(SourceRDD):
    """One partition per offset range; `offset_ranges` says what the batch read."""

    def __init__(
        self,
        engine: Engine,
        sources: Sequence[SourceSpec],
        offset_ranges: Sequence[OffsetRange],
        preferred: Sequence[tuple[str, ...]],
    ) -> None:
        super().__init__(engine, sources, preferred)
        self.offset_ranges = tuple(offset_ranges)


class FailedPlanRDD(RDD):
    """A batch whose ranges could not be planned: running any job on it raises the reason."""

    def __init__(self, engine: Engine, error: Exception) -> None:
        super().__init__(engine, 1)
        self.error = error

    def plan(self, split: int, locate: Any) -> tuple[SourceSpec, list[Any]]:
        raise self.error


class KafkaInputDStream(InputDStream):
    """Records of Kafka topics, as (key, value) strings or through `message_handler`.

    See StreamingContext.kafka_stream for the arguments.
    """

    supports_rate_limit = True

    def __init__(
        self,
        env: StreamingEnv,
        topics: str | Sequence[str] | re.Pattern[str],
        kafka_params: Mapping[str, object],
        *,
        starting_offsets: StartingOffsets = "earliest",
        group_id: str | None = None,
        isolation_level: str = "read_committed",
        max_rate_per_partition: float | None = None,
        fail_on_data_loss: bool = True,
        partition_discovery_interval: float = 10.0,
        message_handler: MessageHandler | None = None,
        commit_offsets: bool = True,
        poll_timeout: float = 120.0,
        broker_client: BrokerClient | None = None,
    ) -> None:
        try:
            self.subscription = Subscription.of(topics)
            self.starting_offsets = validate_starting_offsets(starting_offsets)
            config = ClientConfig.of(kafka_params)
        except ValueError as e:
            raise ConfigError(f"kafka_stream: {e}") from None
        if isolation_level not in ISOLATION_LEVELS:
            raise ConfigError(
                f"kafka_stream: isolation_level must be one of {ISOLATION_LEVELS},"
                f" got {isolation_level!r}"
            )
        if max_rate_per_partition is not None and max_rate_per_partition <= 0:
            raise ConfigError(
                "kafka_stream: max_rate_per_partition must be > 0 records per second,"
                f" got {max_rate_per_partition}"
            )
        if partition_discovery_interval <= 0 or poll_timeout <= 0:
            raise ConfigError(
                "kafka_stream: partition_discovery_interval and poll_timeout must be > 0 seconds"
            )
        super().__init__(env)
        self.group_id = group_id or config.get("group.id") or f"kubestream-{self.subscription}"
        self.isolation_level = isolation_level
        self.config = config
        self.reader_config = consumer_config(config, self.group_id, isolation_level)
        self.max_rate_per_partition = max_rate_per_partition
        self.fail_on_data_loss = fail_on_data_loss
        self.discovery_interval = partition_discovery_interval
        self.message_handler = message_handler
        self.commit_offsets = commit_offsets
        self.poll_timeout = poll_timeout
        self._client = broker_client
        self.positions: dict[TopicPartition, int] = {}
        self.ranges: dict[int, tuple[OffsetRange, ...]] = {}
        self.lag: dict[TopicPartition, int] = {}
        self.lost_records = 0
        self.data_loss_events = 0
        self.last_data_loss: str | None = None
        self.last_data_loss_time: int | None = None
        """Unix ms of the latest loss, as the driver learnt of it."""
        self._loss_lock = threading.Lock()
        self._partitions: list[TopicPartition] = []
        self._discovered_at: float | None = None
        self._committer: _Committer | None = None

    def describe(self) -> str:
        return f"KafkaInputDStream({self.subscription})"

    # --- lifecycle and checkpoint ------------------------------------------------------------
    def start(self) -> None:
        if self._client is None:
            self._client = KafkaAdmin(self.config, self.isolation_level)
        if self.commit_offsets:
            self._committer = _Committer(self._client, self.group_id)
        self.env.engine.input_listeners.append(self._input_event)

    def stop(self) -> None:
        if self._input_event in self.env.engine.input_listeners:
            self.env.engine.input_listeners.remove(self._input_event)
        if self._committer is not None:
            self._committer.stop()
        if self._client is not None:
            self._client.close()

    def _input_event(self, event: InputEvent) -> None:
        """A task's report of records it found deleted and skipped (transport thread)."""
        if event.stream_id == self.id and event.kind == DATA_LOSS:
            self._count_loss(event.detail, event.records, "an executor")

    def _count_loss(self, loss: str, records: int, where: str) -> None:
        with self._loss_lock:
            self.data_loss_events += 1
            self.lost_records += records
            self.last_data_loss = loss
            self.last_data_loss_time = int(time.time() * 1000)
        # One line a log shipper can turn into a Kubernetes Event: fixed reason, then facts.
        log.warning(
            "KafkaDataLoss: stream %d skipped %d lost records (found by %s): %s",
            self.id,
            records,
            where,
            loss,
        )

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "positions": [[tp.topic, tp.partition, o] for tp, o in sorted(self.positions.items())],
            "ranges": {t: [r.to_json() for r in rs] for t, rs in self.ranges.items()},
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.positions = {TopicPartition(t, p): o for t, p, o in state.get("positions", [])}
        self.ranges = {
            int(t): tuple(OffsetRange.from_json(r) for r in rs)
            for t, rs in state.get("ranges", {}).items()
        }

    def batch_completed(self, info: BatchInfo) -> None:
        """Commit the batch's end offsets to the group once its outputs succeeded."""
        ranges = self.ranges.get(info.batch_time)
        if self._committer is not None and ranges and not info.failed:
            self._committer.submit({r.topic_partition: r.until_offset for r in ranges})

    def clear_metadata(self, batch_time: int) -> list:  # type: ignore[type-arg]
        for t in [t for t in self.ranges if t <= batch_time - self.history_ms]:
            del self.ranges[t]
        return super().clear_metadata(batch_time)

    # --- batches -----------------------------------------------------------------------------
    def offset_ranges(self, batch_time: int) -> tuple[OffsetRange, ...]:
        """What the batch of `batch_time` (ms) reads: for foreach_rdd(fn(batch_time, rdd)) to
        store with its output; KeyError for a batch this stream no longer remembers."""
        return self.ranges[batch_time]

    def compute(self, batch_time: int) -> RDD | None:
        ranges = self.ranges.get(batch_time)
        if ranges is None:
            try:
                plan = self._plan()
            except Exception as e:
                log.error("Kafka batch %d not planned: %s", batch_time, e)
                self.records_per_batch[batch_time] = 0
                return FailedPlanRDD(self.env.engine, e)
            ranges = plan.ranges
            self.ranges[batch_time] = ranges
            self.positions = plan.positions
            self.lag = plan.lag
        self.records_per_batch[batch_time] = sum(r.count for r in ranges)
        return self._rdd(ranges)

    def _rdd(self, ranges: Sequence[OffsetRange]) -> RDD:
        raw = self.message_handler is not None
        sources: list[SourceSpec] = [
            ReaderSource(
                KafkaRangeReader(
                    self.reader_config, r, raw, self.fail_on_data_loss, self.poll_timeout, self.id
                )
            )
            for r in ranges
        ]
        executors = sorted(self.env.engine.executor_ids())
        preferred = [_consistent_executor(r.topic_partition, executors) for r in ranges]
        rdd = KafkaRDD(self.env.engine, sources, ranges, preferred)
        if self.message_handler is None:
            return rdd
        return rdd._with(MapOp(HandleMessage(self.message_handler)))

    def _plan(self) -> BatchPlan:
        client = self._require_client()
        now = time.monotonic()
        if self._discovered_at is None or now - self._discovered_at >= self.discovery_interval:
            self._discover(client)
            self._discovered_at = now
        offsets = client.offsets(self._partitions)
        if not self.positions and not self.ranges:
            self.positions = self._starting_positions(client, offsets)
        limit = self.max_rate_per_partition
        plan = plan_batch(
            self.positions,
            offsets,
            budget=records_budget(self.rate_limit, self.env.batch_interval),
            max_per_partition=None
            if limit is None
            else max(1, math.floor(limit * self.env.batch_interval)),
            fail_on_data_loss=self.fail_on_data_loss,
        )
        for loss in plan.losses:
            self._count_loss(str(loss), loss.skipped or 0, "planning")
        return plan

    def _discover(self, client: BrokerClient) -> None:
        counts = client.partitions()
        topics = self.subscription.select(counts)
        found = [TopicPartition(t, p) for t in topics for p in range(counts[t])]
        added = sorted(set(found) - set(self._partitions))
        if added and self._partitions:
            log.info(
                "Kafka stream %d found new partitions: %s", self.id, ", ".join(map(str, added))
            )
        self._partitions = found

    def _starting_positions(
        self, client: BrokerClient, offsets: Mapping[TopicPartition, Any]
    ) -> dict[TopicPartition, int]:
        spec = self.starting_offsets
        by_time = (
            client.offsets_for_times(list(offsets), spec.ms)
            if isinstance(spec, FromTimestamp)
            else None
        )
        return starting_positions(spec, offsets, by_time)

    def _require_client(self) -> BrokerClient:
        if self._client is None:
            raise RuntimeError("the Kafka stream is not started")
        return self._client

    def input_details(self) -> dict[str, Any]:
        """Per-partition lag (latest offset minus planned) and data loss, for the status."""
        lag = dict(self.lag)
        return {
            "subscription": str(self.subscription),
            "group_id": self.group_id,
            "lag": {str(tp): n for tp, n in sorted(lag.items())},
            "total_lag": sum(lag.values()),
            "lost_records": self.lost_records,
            "data_loss_events": self.data_loss_events,
            "last_data_loss": self.last_data_loss,
            "last_data_loss_time": self.last_data_loss_time,
        }


def _consistent_executor(tp: TopicPartition, executors: Sequence[str]) -> tuple[str, ...]:
    """The same executor for a partition as long as the executors stay the same, so its
    cached consumer reads on (Spark's PreferConsistent)."""
    if not executors:
        return ()
    return (executors[zlib.crc32(str(tp).encode()) % len(executors)],)


class _Committer:
    """Commits a group's offsets on a thread of its own, newest first: a slow broker never
    holds up batches, and an old commit never follows a newer one."""

    def __init__(self, client: BrokerClient, group: str) -> None:
        self._client = client
        self._group = group
        self._latest: dict[TopicPartition, int] | None = None
        self._wake = threading.Condition()
        self._stopped = False
        self.committed: dict[TopicPartition, int] = {}
        self._thread = threading.Thread(target=self._run, name="kafka-commit", daemon=True)
        self._thread.start()

    def submit(self, positions: Mapping[TopicPartition, int]) -> None:
        with self._wake:
            self._latest = {**(self._latest or {}), **positions}
            self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stopped or self._latest is not None)
                positions, self._latest = self._latest, None
                stopped = self._stopped
            if positions:
                try:
                    self._client.commit(self._group, positions)
                    self.committed.update(positions)
                except Exception as e:
                    log.warning("committing offsets of group %s failed: %s", self._group, e)
            if stopped:
                return
