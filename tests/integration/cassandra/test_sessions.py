"""Sessions end with the job: the server's own list of client connections
(system_views.clients) shrinks back when the StreamingContext stops, or when an executor
process exits, while the process that held them still runs."""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable

from cassandra.cluster import Session

from kubestream import CassandraConnection
from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.executor.process import ExecutorProcess
from kubestream.streaming.dstream import DStream
from kubestream.streaming.sinks.cassandra.config import WriteOptions
from kubestream.streaming.sinks.cassandra.rows import ColumnMapping
from kubestream.streaming.sinks.cassandra.writer import PartitionWriter, table_plan
from kubestream.testing import run_batches
from kubestream.transport import CurveKeys, generate_keypair

WORDS = ["ant", "bee", "cat", "dog"] * 25


def clients(cql: Session) -> int:
    """Native-protocol connections the server has open right now."""
    return len(list(cql.execute("SELECT address, port FROM system_views.clients")))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_stopping_the_streaming_context_closes_its_sessions(
    connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    """In-process executors (run_batches' default): the tasks' sessions are this process's."""
    cql.execute(f"CREATE TABLE {keyspace}.counts (word text PRIMARY KEY, n bigint)")
    before = clients(cql)
    during: list[int] = []

    def pipeline(words: DStream[str]) -> DStream[tuple[str, int]]:
        counts = words.map(lambda w: (w, 1)).reduce_by_key(operator.add)
        counts.save_to_cassandra(keyspace, "counts", ["word", "n"], connection=connection)
        counts.foreach_rdd(lambda rdd: during.append(clients(cql)))  # after the save, in order
        return counts

    for run in range(2):  # the next job in this process connects again
        run_batches([[WORDS]], pipeline)
        assert during[-1] > before, f"run {run}: the sink opened no session"
        wait_until(lambda: clients(cql) == before, f"run {run}'s sessions to close")
    rows = {r.word: r.n for r in cql.execute(f"SELECT word, n FROM {keyspace}.counts")}
    assert rows == {w: 25 for w in set(WORDS)}


def test_an_executor_process_closes_its_sessions_when_it_exits(
    connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    """The executor runs in this test's process (a thread), so that its sessions closing is
    visible while the process lives; no StreamingContext is involved."""
    cql.execute(f"CREATE TABLE {keyspace}.counts (word text PRIMARY KEY, n bigint)")
    before = clients(cql)
    keys = CurveKeys(*generate_keypair())
    engine = Engine(default_parallelism=2)
    endpoint = DriverEndpoint(engine, keys, "127.0.0.1", 0, heartbeat_interval=0.2)
    executor = ExecutorProcess(
        "exec-1", f"tcp://127.0.0.1:{endpoint.port}", keys, heartbeat_interval=0.2
    )
    thread = threading.Thread(target=executor.run, daemon=True)
    thread.start()
    try:
        assert engine.wait_for_executors(1, timeout=30)
        options = WriteOptions()
        plan, mapping = table_plan(
            connection, keyspace, "counts", ColumnMapping.of(["word", "n"]), options
        )
        writer = PartitionWriter(connection, plan, mapping, options, batch_time=1_000)
        rdd = engine.parallelize([(w, i) for i, w in enumerate(WORDS[:4])], 2)
        assert sum(r.written for r in rdd.map_partitions_with_index(writer).collect()) == 4
        assert clients(cql) > before
        engine.broadcast(Shutdown("test done"))
        thread.join(30)
        assert not thread.is_alive()
    finally:
        executor.stop()
        endpoint.close()
    wait_until(lambda: clients(cql) == before, "the executor's sessions to close")
