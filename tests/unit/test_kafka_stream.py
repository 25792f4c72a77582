"""The Kafka direct stream's driver side over an in-memory fake of the brokers (no sockets):
planning per batch, replay from a checkpoint, discovery, failed plans, commits, secrets."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence

import pytest
from prometheus_client import CollectorRegistry

from kubestream import StreamingContext
from kubestream.driver.metrics import InputsCollector
from kubestream.errors import ConfigError
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.sources.kafka.config import ClientConfig
from kubestream.streaming.sources.kafka.offsets import OffsetRange, TopicPartition
from kubestream.streaming.sources.kafka.planning import OffsetsLostError, PartitionOffsets
from kubestream.streaming.sources.kafka.records import RecordShape
from kubestream.streaming.sources.kafka.stream import FailedPlanRDD, KafkaInputDStream, KafkaRDD


class FakeBrokers:
    """In-memory fake of a cluster (named so: the integration tests use the real broker)."""

    def __init__(self) -> None:
        self.logs: dict[TopicPartition, PartitionOffsets] = {}
        self.commits: list[tuple[str, dict[TopicPartition, int]]] = []
        self.down = False

    def topic(self, name: str, *latest: int) -> None:
        for p, n in enumerate(latest):
            self.logs[TopicPartition(name, p)] = PartitionOffsets(0, n)

    def partitions(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for tp in self.logs:
            counts[tp.topic] = max(counts.get(tp.topic, 0), tp.partition + 1)
        return counts

    def offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, PartitionOffsets]:
        if self.down:
            raise ConnectionError("broker 127.0.0.1:1 unreachable")
        return {tp: self.logs[tp] for tp in tps if tp in self.logs}

    def offsets_for_times(
        self, tps: Sequence[TopicPartition], ms: int
    ) -> dict[TopicPartition, int | None]:
        return {tp: min(ms, self.logs[tp].latest) for tp in tps}

    def commit(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        self.commits.append((group, dict(positions)))

    def close(self) -> None:
        pass


@pytest.fixture
def ssc() -> Iterator[StreamingContext]:
    context = StreamingContext(1.0, executors=1)
    yield context
    context.stop()


def ranges_of(rdd: object) -> tuple[OffsetRange, ...]:
    assert isinstance(rdd, KafkaRDD)
    return rdd.offset_ranges


def test_each_batch_reads_on_from_the_last_and_replays_its_own_ranges(
    ssc: StreamingContext,
) -> None:
    brokers = FakeBrokers()
    brokers.topic("a", 10, 0)
    stream = KafkaInputDStream(ssc.env, "a", {"bootstrap.servers": "x:1"}, broker_client=brokers)
    stream.start()
    first = ranges_of(stream.compute(1000))
    assert first == (OffsetRange("a", 0, 0, 10), OffsetRange("a", 1, 0, 0))
    brokers.topic("a", 15, 3)
    second = ranges_of(stream.compute(2000))
    assert second == (OffsetRange("a", 0, 10, 15), OffsetRange("a", 1, 0, 3))
    assert ranges_of(stream.compute(1000)) == first  # a batch computed again reads the same
    assert stream.records_per_batch == {1000: 10, 2000: 8}
    saved = stream.checkpoint_state()

    restarted = KafkaInputDStream(ssc.env, "a", {"bootstrap.servers": "x:1"}, broker_client=brokers)
    restarted.restore_state(saved)
    restarted.start()
    brokers.topic("a", 20, 3)
    assert ranges_of(restarted.compute(2000)) == second
    assert ranges_of(restarted.compute(3000)) == (
        OffsetRange("a", 0, 15, 20),
        OffsetRange("a", 1, 3, 3),
    )


def test_patterns_pick_up_new_topics_and_partitions_from_their_start(
    ssc: StreamingContext,
) -> None:
    brokers = FakeBrokers()
    brokers.topic("orders-eu", 5)
    brokers.topic("payments", 7)
    stream = KafkaInputDStream(
        ssc.env,
        re.compile("orders-.*"),
        {"bootstrap.servers": "x:1"},
        starting_offsets="latest",
        partition_discovery_interval=0.001,
        broker_client=brokers,
    )
    stream.start()
    assert ranges_of(stream.compute(1000)) == (OffsetRange("orders-eu", 0, 5, 5),)
    brokers.topic("orders-eu", 6, 4)  # a partition added
    brokers.topic("orders-us", 2)  # a topic created
    time.sleep(0.002)
    assert ranges_of(stream.compute(2000)) == (
        OffsetRange("orders-eu", 0, 5, 6),
        OffsetRange("orders-eu", 1, 0, 4),
        OffsetRange("orders-us", 0, 0, 2),
    )


def test_rate_limits_cap_each_batch(ssc: StreamingContext) -> None:
    brokers = FakeBrokers()
    brokers.topic("a", 1000, 10)
    stream = KafkaInputDStream(
        ssc.env,
        ["a"],
        {"bootstrap.servers": "x:1"},
        max_rate_per_partition=100,
        broker_client=brokers,
    )
    stream.start()
    assert [r.count for r in ranges_of(stream.compute(1000))] == [100, 10]
    brokers.topic("a", 1000, 20)
    stream.set_estimated_rate(50)  # backpressure: 50 records/s for the whole stream
    # Shared by lag (900 and 10), at least one each.
    assert [r.count for r in ranges_of(stream.compute(2000))] == [49, 1]
    assert stream.input_details()["lag"] == {"a-0": 851, "a-1": 9}
    registry = CollectorRegistry()
    registry.register(InputsCollector(ssc.graph))
    labels = {"stream": str(stream.id), "partition": "a-0"}
    assert registry.get_sample_value("kubestream_input_lag_records", labels) == 851


def test_a_plan_that_fails_fails_its_batch_and_consumes_nothing(ssc: StreamingContext) -> None:
    brokers = FakeBrokers()
    brokers.topic("a", 10)
    stream = KafkaInputDStream(ssc.env, "a", {"bootstrap.servers": "x:1"}, broker_client=brokers)
    stream.start()
    brokers.down = True
    failed = stream.compute(1000)
    assert isinstance(failed, FailedPlanRDD)
    with pytest.raises(ConnectionError, match="unreachable"):
        failed.count()
    brokers.down = False
    brokers.logs[TopicPartition("a", 0)] = PartitionOffsets(4, 10)  # retention ran
    stream.positions = {TopicPartition("a", 0): 2}
    lost = stream.compute(2000)
    assert isinstance(lost, FailedPlanRDD) and isinstance(lost.error, OffsetsLostError)
    assert "topic 'a' partition 0: wanted offset 2, available [4, 10)" in str(lost.error)
    assert stream.positions == {TopicPartition("a", 0): 2}


def test_skipping_lost_records_counts_them(
    ssc: StreamingContext, caplog: pytest.LogCaptureFixture
) -> None:
    brokers = FakeBrokers()
    brokers.logs[TopicPartition("a", 0)] = PartitionOffsets(4, 10)
    stream = KafkaInputDStream(
        ssc.env,
        "a",
        {"bootstrap.servers": "x:1"},
        starting_offsets={("a", 0): 1},
        fail_on_data_loss=False,
        broker_client=brokers,
    )
    stream.start()
    with caplog.at_level(logging.WARNING):
        assert ranges_of(stream.compute(1000)) == (OffsetRange("a", 0, 4, 10),)
    assert "KafkaDataLoss" in caplog.text
    assert stream.input_details()["lost_records"] == 3


def test_offsets_are_committed_only_after_a_batch_succeeds(ssc: StreamingContext) -> None:
    brokers = FakeBrokers()
    brokers.topic("a", 10)
    stream = KafkaInputDStream(
        ssc.env, "a", {"bootstrap.servers": "x:1", "group.id": "g"}, broker_client=brokers
    )
    stream.start()
    stream.compute(1000)
    brokers.topic("a", 12)
    stream.compute(2000)
    failed = BatchInfo(2000, submission_time=0.0)
    failed.errors.append("output operation 0 failed")
    stream.batch_completed(failed)
    stream.batch_completed(BatchInfo(1000, submission_time=0.0))
    deadline = time.monotonic() + 10
    while not brokers.commits and time.monotonic() < deadline:
        time.sleep(0.01)
    stream.stop()
    assert brokers.commits == [("g", {TopicPartition("a", 0): 10})]


def test_bad_arguments_name_the_field_and_secrets_never_show(ssc: StreamingContext) -> None:
    with pytest.raises(ConfigError, match="kafka_stream: topics must be"):
        KafkaInputDStream(ssc.env, [], {"bootstrap.servers": "x:1"})
    with pytest.raises(ConfigError, match=re.escape("bootstrap.servers")):
        KafkaInputDStream(ssc.env, "a", {})
    with pytest.raises(ConfigError, match="isolation_level"):
        KafkaInputDStream(ssc.env, "a", {"bootstrap.servers": "x:1"}, isolation_level="dirty")
    with pytest.raises(
        ConfigError, match=re.escape("'sasl.password' must be a string or number, got ***")
    ):
        KafkaInputDStream(ssc.env, "a", {"bootstrap.servers": "x:1", "sasl.password": ["hunter2"]})
    config = ClientConfig.of(
        {"bootstrap.servers": "x:1", "sasl.password": "hunter2", "ssl.key.password": "pw2"}
    )
    assert "hunter2" not in repr(config) and "pw2" not in str(config)
    assert config["sasl.password"] == "hunter2"


def test_records_become_key_value_and_headers() -> None:
    default = RecordShape()
    assert default.split(("k", "v")) == (b"k", b"v", [])
    assert default.split("line") == (None, b"line", [])
    assert default.split((None, None)) == (None, None, [])
    shaped = RecordShape(
        key=lambda r: r["id"], value=lambda r: r["n"], headers=lambda r: [("h", "x")]
    )
    assert shaped.split({"id": "a", "n": 3}) == (b"a", b"3", [("h", b"x")])
    with pytest.raises(TypeError, match=r"value of record \('k', \[1\]\) is a list.*value="):
        default.split(("k", [1]))
