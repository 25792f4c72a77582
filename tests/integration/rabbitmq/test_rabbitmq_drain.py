"""Draining the executor that hosts a RabbitMQ receiver, mid-stream: the receiver stores
what it holds or returns it to the queue, starts on another executor, and, without
message ids to dedupe by, every message still arrives exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from kubestream.driver.decommission import Decommissioner
from tests.brokers import RabbitMQBroker
from tests.integration.conftest import start_cluster, stop_cluster
from tests.integration.rabbitmq.queues import depth, new_queue, publish

MESSAGES = 4000


def test_draining_the_receivers_executor_returns_unstored_deliveries(
    tmp_path: Path, rabbitmq_broker: RabbitMQBroker
) -> None:
    queue = new_queue(rabbitmq_broker)
    password_file = tmp_path / "password"
    password_file.write_text(rabbitmq_broker.password)
    cluster = start_cluster(executors=3)
    ssc = StreamingContext(0.5, engine=cluster.engine)
    received: Counter[str] = Counter()

    def collect(rdd: RDD) -> None:
        received.update(rdd.collect())

    ssc.rabbitmq_stream(
        "127.0.0.1",
        rabbitmq_broker.port,
        queue,
        username=rabbitmq_broker.username,
        password_file=str(password_file),
        block_size=100,
        block_interval=0.3,
    ).foreach_rdd(collect)
    decommissioner = Decommissioner(cluster.engine, ssc.receiver_tracker)
    bodies = [f"d{i:05d}" for i in range(MESSAGES)]

    def feed() -> None:
        for start in range(0, MESSAGES, 200):
            publish(rabbitmq_broker, queue, bodies[start : start + 200], ids=False)

    feeder = threading.Thread(target=feed)
    ssc.start()
    try:
        feeder.start()
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = ssc.receiver_tracker.receivers()[0].executor_id
        assert victim is not None
        decommissioner.start(victim)
        deadline = time.monotonic() + 120
        while decommissioner.outcomes[victim] == "draining" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert decommissioner.outcomes[victim] == "decommissioned"
        feeder.join()
        deadline = time.monotonic() + 60
        while sum(received.values()) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.1)
        host = ssc.receiver_tracker.receivers()[0].executor_id
    finally:
        ssc.stop(stop_engine=False)
        stop_cluster(cluster)
    assert host not in (None, victim), "the receiver was not moved"
    assert received == Counter(bodies)
    assert depth(rabbitmq_broker, queue) == (0, 0)
