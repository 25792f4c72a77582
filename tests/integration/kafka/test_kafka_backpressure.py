"""Backpressure on a Kafka topic with a large backlog, on real executor processes.

The job processes about 4000 records/s (its output operation sleeps 0.25 ms per
record) and starts with 40,000 records waiting in 2 partitions. The initial cap
(max_rate_per_partition) lets the first batches take twice what the job
processes in a batch interval; backpressure then lowers the rate until batches
keep up, so the scheduling delay stops growing while the backlog waits in Kafka.
Per-partition lag is in the status document and the metrics throughout. The test
watches 20 batches (or the whole backlog, on a fast machine).
"""

from __future__ import annotations

import itertools
import time

from prometheus_client import CollectorRegistry

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from kubestream.driver.metrics import InputsCollector
from kubestream.driver.status import context_status
from tests.brokers import KafkaBroker
from tests.integration.conftest import Cluster
from tests.integration.kafka.test_kafka_stream import wait_for
from tests.integration.kafka.topics import create_topic, produce

RECORDS = 40_000
BATCHES = 20
SECONDS_PER_RECORD = 0.00025


def test_backpressure_bounds_the_delay_and_the_lag_is_reported(
    cluster: Cluster, kafka_broker: KafkaBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = create_topic(bootstrap, 2)
    produce(bootstrap, topic, [(i % 2, None, str(i)) for i in range(RECORDS)])
    ssc = StreamingContext(0.5, engine=cluster.engine, backpressure=True)
    stream = ssc.kafka_stream(topic, {"bootstrap.servers": bootstrap}, max_rate_per_partition=4000)
    registry = CollectorRegistry()
    registry.register(InputsCollector(ssc.graph))
    seen: list[int] = []
    expected: list[int] = []
    lags: list[int] = []
    statuses: list[dict[str, object]] = []

    def slow(batch_time: int, rdd: RDD) -> None:
        records = rdd.collect()
        time.sleep(len(records) * SECONDS_PER_RECORD)
        seen.extend(int(value) for _, value in records)
        for r in stream.offset_ranges(batch_time):  # records i % 2 == partition, in order
            expected.extend(range(r.partition + 2 * r.from_offset, 2 * r.until_offset, 2))
        (status,) = context_status(ssc, "backpressure")["inputs"]
        statuses.append(status)
        lags.append(status["total_lag"])

    stream.foreach_rdd(slow)
    ssc.start()
    try:
        wait_for(lambda: len(lags) >= BATCHES or len(seen) >= RECORDS, "the batches", 240)
        (status,) = context_status(ssc, "backpressure")["inputs"]
        metric = registry.get_sample_value(
            "kubestream_input_lag_records", {"stream": str(stream.id), "partition": f"{topic}-0"}
        )
    finally:
        ssc.stop(stop_engine=False)
    assert sorted(seen) == sorted(expected) and len(set(seen)) == len(seen), "lost or doubled"
    assert metric == status["lag"][f"{topic}-0"]
    # The backlog waited in Kafka (latest offset minus planned) and shrank batch by batch,
    # visible in the status.
    assert lags[0] > 0, lags
    assert all(a >= b for a, b in itertools.pairwise(lags)), lags
    assert set(statuses[0]["lag"]) == {f"{topic}-0", f"{topic}-1"}
    busy = [b for b in ssc.batches if b.completed and b.num_records]
    delays = [b.scheduling_delay or 0.0 for b in busy]
    sizes = [b.num_records for b in busy]
    # The first batches take the initial cap; backpressure then reads less per batch...
    assert sizes[0] == 4000 and min(sizes[2:]) < 4000, sizes
    # ...so the delay stops growing: it ends no higher than it rose to in the first half.
    assert delays[-1] <= max(delays[: len(delays) // 2]), (delays, sizes)
