"""Sources on real executor processes: socket receiver and rate stream, checked record by record."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

from kubestream import StreamingContext
from kubestream.core.rdd import RDD
from tests.integration.conftest import Cluster


def test_socket_text_stream_delivers_every_line_once(cluster: Cluster) -> None:
    lines = [f"line {i} {'x' * (i % 7)}" for i in range(3000)]
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    sent = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for start in range(0, len(lines), 100):
                conn.sendall(("\n".join(lines[start : start + 100]) + "\n").encode())
                time.sleep(0.01)
            sent.set()
            time.sleep(30)

    threading.Thread(target=serve, daemon=True).start()
    ssc = StreamingContext(0.2, engine=cluster.engine)
    received: Counter[str] = Counter()

    def collect(rdd: RDD) -> None:
        received.update(rdd.collect())

    stream = ssc.socket_text_stream("127.0.0.1", port)
    stream.foreach_rdd(collect)
    ssc.start()
    assert sent.wait(30)
    time.sleep(0.5)
    ssc.stop(stop_engine=False, graceful=True, timeout=10)
    server.close()
    assert received == Counter(lines)
    assert sum(b.num_records for b in ssc.batches) == len(lines)


def test_rate_stream_gives_consecutive_integers_without_gaps(cluster: Cluster) -> None:
    ssc = StreamingContext(0.1, engine=cluster.engine)
    seen: list[int] = []
    ssc.rate_stream(500).foreach_rdd(lambda rdd: seen.extend(rdd.collect()))
    ssc.start()
    time.sleep(1.5)
    ssc.stop(stop_engine=False, graceful=True)
    assert len(seen) >= 300
    assert sorted(seen) == list(range(len(seen)))
