"""RabbitMQ and Flume source benchmarks on this machine, written as JSON (never asserted).

    .venv/bin/python benchmarks/receivers_throughput.py [--messages N] [--events M] [--out F]

RabbitMQ: starts the repository's node (hack/brokers/rabbitmq.sh, timed), fills a
durable queue with N persistent messages, and drains it with a plain pika loop
(prefetch 500, one multiple-ack per 500); fills it again and drains it with
rabbitmq_stream (one receiver, 2 executor processes, blocks of 500), without and
with id dedupe; RabbitMQ figures run from the receiver's start to the last
message counted, so they include receiving, storing (with a replica on the
second executor) and the batch that counts them. Flume: a real agent (sequence
source, memory channel, Thrift sink, batches of 100) delivers M events to a plain
thriftpy2 server that only counts them, then to flume_stream; both are timed from
starting the agent (its JVM start included) to the last event counted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import pika  # noqa: E402
import thriftpy2  # noqa: E402
from tests.brokers import free_port, start_flume, start_rabbitmq  # noqa: E402
from thriftpy2.protocol import TCompactProtocolFactory  # noqa: E402
from thriftpy2.rpc import make_server  # noqa: E402
from thriftpy2.transport import TFramedTransportFactory  # noqa: E402

from kubestream import StreamingContext  # noqa: E402
from kubestream.streaming.sources.flume import FLUME_IDL  # noqa: E402
from throughput import Cluster  # noqa: E402

BLOCK = 500


def fill(params: pika.ConnectionParameters, queue: str, messages: int) -> dict[str, Any]:
    """Persistent messages, no publisher confirms; done when the queue holds them all."""
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        started = time.perf_counter()
        for i in range(messages):
            properties = pika.BasicProperties(delivery_mode=2, message_id=str(i))
            channel.basic_publish("", queue, f"message {i}".encode(), properties)
        while channel.queue_declare(queue, durable=True, passive=True).method.message_count < (
            messages
        ):
            connection.sleep(0.05)
        seconds = time.perf_counter() - started
    return {"messages_per_second": messages / seconds, "seconds": seconds}


def plain_consume(params: pika.ConnectionParameters, queue: str, messages: int) -> dict[str, Any]:
    with pika.BlockingConnection(params) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=BLOCK)
        started = 0.0
        for received, (method, _, _) in enumerate(channel.consume(queue, auto_ack=False), 1):
            if not started:
                started = time.perf_counter()
            if received % BLOCK == 0 or received == messages:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if received == messages:
                break
        seconds = time.perf_counter() - started
        channel.cancel()
    return {"messages_per_second": messages / seconds, "seconds": seconds}


def kubestream_rabbitmq(
    cluster: Cluster, port: int, queue: str, messages: int, dedupe: bool, checkpoint: str
) -> dict[str, Any]:
    ssc = StreamingContext(0.5, engine=cluster.engine)
    if dedupe:
        ssc.checkpoint(checkpoint)
    stream = ssc.rabbitmq_stream(
        "127.0.0.1",
        port,
        queue,
        block_size=BLOCK,
        block_interval=0.2,
        id_header="message_id" if dedupe else None,
    )
    return _run_counting(ssc, stream, messages)


def _run_counting(ssc: StreamingContext, stream: Any, messages: int) -> dict[str, Any]:
    counted = [0]

    def count(rdd: Any) -> None:
        counted[0] += rdd.count()

    stream.foreach_rdd(count)
    started = time.perf_counter()
    ssc.start()
    deadline = time.monotonic() + 600
    while counted[0] < messages and time.monotonic() < deadline:
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    ssc.stop(stop_engine=False)
    return {
        "messages_per_second": counted[0] / seconds,
        "seconds": seconds,
        "counted": counted[0],
        "note": "from start (receiver connects) to the last message counted",
    }


def flume_plain(directory: Path, events: int) -> dict[str, Any]:
    module = thriftpy2.load_fp(io.StringIO(FLUME_IDL), module_name="flume_bench_thrift")
    received = [0]
    times: list[float] = []
    done = threading.Event()

    class Counting:
        def append(self, event: Any) -> int:
            return self.appendBatch([event])

        def appendBatch(self, batch: list[Any]) -> int:  # noqa: N802
            if not times:
                times.append(time.perf_counter())
            received[0] += len(batch)
            if received[0] >= events:
                times.append(time.perf_counter())
                done.set()
            return int(module.Status.OK)

    port = free_port()
    server = make_server(
        module.ThriftSourceProtocol,
        Counting(),
        "127.0.0.1",
        port,
        proto_factory=TCompactProtocolFactory(),
        trans_factory=TFramedTransportFactory(),
    )
    threading.Thread(target=server.serve, daemon=True).start()
    started = time.perf_counter()
    agent = start_flume(directory, f"127.0.0.1:{port}", events)
    try:
        done.wait(300)
    finally:
        agent.stop()
        server.close()
    return {
        "events_per_second_first_to_last": events / (times[-1] - times[0]),
        "events_per_second_from_agent_start": events / (times[-1] - started),
        "agent_start_to_first_event_seconds": times[0] - started,
    }


def kubestream_flume(cluster: Cluster, directory: Path, events: int) -> dict[str, Any]:
    port = free_port()
    ssc = StreamingContext(0.5, engine=cluster.engine)
    counted = [0]

    def count(rdd: Any) -> None:
        counted[0] += rdd.count()

    ssc.flume_stream("127.0.0.1", port).foreach_rdd(count)
    ssc.start()
    started = time.perf_counter()
    agent = start_flume(directory, f"127.0.0.1:{port}", events)
    try:
        deadline = time.monotonic() + 300
        while counted[0] < events and time.monotonic() < deadline:
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    finally:
        agent.stop()
        ssc.stop(stop_engine=False)
    return {
        "events_per_second_from_agent_start": counted[0] / seconds,
        "seconds": seconds,
        "counted": counted[0],
        "note": "from starting the agent (JVM start included) to the last event counted",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--events", type=int, default=100_000, help="Flume events")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/receivers.json"))
    args = parser.parse_args()
    n = args.messages
    work = Path(tempfile.mkdtemp(prefix="kubestream-receivers-bench-"))
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": os.getloadavg()[0],
        },
        "workload": {
            "rabbitmq_messages": n,
            "flume_events": args.events,
            "body_bytes": "~13 (RabbitMQ), 1-5 (Flume)",
            "block_size": BLOCK,
        },
    }
    rabbit: dict[str, Any] = {}
    broker = start_rabbitmq(work / "rabbitmq")
    cluster = Cluster(2)
    try:
        rabbit["broker_start_seconds"] = broker.broker.startup_seconds
        params = pika.ConnectionParameters("127.0.0.1", broker.port)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        rabbit["plain_publish_persistent"] = fill(params, queue, n)
        rabbit["plain_pika_consumer"] = plain_consume(params, queue, n)
        fill(params, queue, n)
        rabbit["kubestream_rabbitmq_stream_2_executors"] = kubestream_rabbitmq(
            cluster, broker.port, queue, n, False, str(work / "ckpt-1")
        )
        fill(params, queue, n)
        rabbit["kubestream_rabbitmq_stream_dedupe_2_executors"] = kubestream_rabbitmq(
            cluster, broker.port, queue, n, True, str(work / "ckpt-2")
        )
        results["rabbitmq"] = rabbit
        flume: dict[str, Any] = {}
        flume["plain_thrift_server"] = flume_plain(work / "flume-plain", args.events)
        flume["kubestream_flume_stream_2_executors"] = kubestream_flume(
            cluster, work / "flume-kubestream", args.events
        )
        results["flume"] = flume
    finally:
        cluster.close()
        broker.broker.stop()
    results["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
