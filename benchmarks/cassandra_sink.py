"""Cassandra sink benchmark on this machine, written as JSON (never asserted in tests).

    .venv/bin/python benchmarks/cassandra_sink.py [--rows N] [--out FILE.json]

Starts the repository's Cassandra (hack/brokers/cassandra.sh, timed) and writes the
same rows, with batch-time write timestamps, in each way: a plain cassandra-driver
loop one prepared INSERT at a time; a plain execute_concurrent_with_args loop
(64 in flight); kubestream's save_to_cassandra sink on 2 executor processes, into a
table of one row per partition and into a wide table (rows grouped into
single-partition unlogged batches).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cassandra.auth import PlainTextAuthProvider  # noqa: E402
from cassandra.cluster import Cluster as CqlCluster  # noqa: E402
from cassandra.cluster import Session  # noqa: E402
from cassandra.concurrent import execute_concurrent_with_args  # noqa: E402
from tests.brokers import CassandraServer, start_cassandra  # noqa: E402

from kubestream import CassandraConnection  # noqa: E402
from kubestream.streaming.sinks.cassandra.config import WriteOptions  # noqa: E402
from kubestream.streaming.sinks.cassandra.rows import ColumnMapping  # noqa: E402
from kubestream.streaming.sinks.cassandra.sink import CassandraSink  # noqa: E402
from throughput import Cluster  # noqa: E402

BATCH_ROWS = 10_000


def narrow_rows(n: int, offset: int) -> list[tuple[int, str, int]]:
    return [(offset + i, f"word-{i % 1000}", i) for i in range(n)]


def wide_rows(n: int) -> list[tuple[int, int, str]]:
    return [(i % 100, i, f"value-{i}") for i in range(n)]


def plain(session: Session, keyspace: str, rows: list[Any], concurrent: bool) -> dict[str, Any]:
    insert = session.prepare(
        f"INSERT INTO {keyspace}.narrow (id, word, n) VALUES (?, ?, ?) USING TIMESTAMP ?"
    )
    params = [(*r, 1_000_000) for r in rows]
    started = time.perf_counter()
    if concurrent:
        execute_concurrent_with_args(session, insert, params, concurrency=64)
    else:
        for p in params:
            session.execute(insert, p)
    seconds = time.perf_counter() - started
    return {"rows": len(rows), "rows_per_second": len(rows) / seconds, "seconds": seconds}


def kubestream_sink(
    cluster: Cluster,
    connection: CassandraConnection,
    keyspace: str,
    table: str,
    columns: list[str],
    rows: list[Any],
) -> dict[str, Any]:
    sink = CassandraSink(connection, keyspace, table, ColumnMapping.of(columns), WriteOptions())
    sink(1_000, cluster.engine.parallelize(rows[:10], 2))  # plan the table, open sessions
    started = time.perf_counter()
    for i, start in enumerate(range(0, len(rows), BATCH_ROWS)):
        sink(2_000 + i * 1000, cluster.engine.parallelize(rows[start : start + BATCH_ROWS], 4))
    seconds = time.perf_counter() - started
    return {
        "rows": len(rows),
        "rows_per_second": len(rows) / seconds,
        "seconds": seconds,
        "rows_per_batch": BATCH_ROWS,
    }


def run(server: CassandraServer, rows: int) -> dict[str, Any]:
    cql = CqlCluster(
        [server.host],
        port=server.port,
        auth_provider=PlainTextAuthProvider(server.username, server.password),
    )
    session = cql.connect()
    results: dict[str, Any] = {}
    try:
        keyspace = f"bench_{uuid.uuid4().hex[:8]}"
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(f"CREATE TABLE {keyspace}.narrow (id bigint PRIMARY KEY, word text, n int)")
        session.execute(f"CREATE TABLE {keyspace}.wide (p int, c int, v text, PRIMARY KEY (p, c))")
        one_by_one = min(rows, 5_000)
        results["plain_one_at_a_time"] = plain(
            session, keyspace, narrow_rows(one_by_one, 10**9), concurrent=False
        )
        results["plain_execute_concurrent_64"] = plain(
            session, keyspace, narrow_rows(rows, 2 * 10**9), concurrent=True
        )
        os.environ["BENCH_CASSANDRA_USERNAME"] = server.username
        os.environ["BENCH_CASSANDRA_PASSWORD"] = server.password
        connection = CassandraConnection(
            contact_points=(server.host,),
            port=server.port,
            username_env="BENCH_CASSANDRA_USERNAME",
            password_env="BENCH_CASSANDRA_PASSWORD",
        )
        cluster = Cluster(2)
        try:
            results["kubestream_sink_2_executors"] = kubestream_sink(
                cluster, connection, keyspace, "narrow", ["id", "word", "n"], narrow_rows(rows, 0)
            )
            results["kubestream_sink_2_executors_wide_partitions"] = kubestream_sink(
                cluster, connection, keyspace, "wide", ["p", "c", "v"], wide_rows(rows)
            )
        finally:
            cluster.close()
    finally:
        cql.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/cassandra.json"))
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1m_at_start": os.getloadavg()[0],
        },
        "workload": {"rows": args.rows},
    }
    server = start_cassandra(Path(tempfile.mkdtemp(prefix="kubestream-cassandra-bench-")))
    try:
        results["server_start_seconds"] = server.broker.startup_seconds
        results |= run(server, args.rows)
    finally:
        server.broker.stop()
    results["machine"]["load_average_1m_at_end"] = os.getloadavg()[0]
    floor = results["plain_execute_concurrent_64"]["rows_per_second"]
    results["kubestream_vs_plain_execute_concurrent"] = (
        results["kubestream_sink_2_executors"]["rows_per_second"] / floor
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
