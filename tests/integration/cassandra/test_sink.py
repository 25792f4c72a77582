"""save_to_cassandra on real executor processes against the real server, checked against
plain-Python references: rows, write timestamps, replays in any order, batch sizes, bad
records, table checks and credentials."""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import NoHostAvailable, Session
from cassandra.query import BatchStatement, BatchType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from kubestream import CassandraConnection, ConfigError, JobFailedError
from kubestream.driver.metrics import OutputsCollector
from kubestream.driver.status import context_status
from kubestream.streaming.dstream import DStream
from kubestream.streaming.sinks.cassandra.config import WriteOptions
from kubestream.streaming.sinks.cassandra.rows import ColumnMapping
from kubestream.streaming.sinks.cassandra.sink import CassandraSink
from kubestream.testing import run_batches
from tests.brokers import CassandraServer, make_tls
from tests.integration.cassandra.conftest import CA_ENV
from tests.integration.conftest import Cluster

WORDS = ["ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen"]


def add_to_total(counts: list[int], total: int | None) -> int:
    return sum(counts) + (total or 0)


def sink(
    connection: CassandraConnection,
    keyspace: str,
    table: str,
    columns: list[str] | dict[str, str | int] | None = None,
    **options: Any,
) -> CassandraSink:
    mapping = None if columns is None else ColumnMapping.of(columns)
    return CassandraSink(connection, keyspace, table, mapping, WriteOptions(**options))


def test_running_totals_equal_a_plain_count_with_batch_time_timestamps(
    executors: Cluster, connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.totals (word text PRIMARY KEY, total bigint)")
    rng = random.Random(5)
    batches = [[rng.choice(WORDS) for _ in range(rng.randint(0, 400))] for _ in range(6)]

    def pipeline(words: DStream[str]) -> DStream[tuple[str, int]]:
        pairs = words.map(lambda w: (w, 1)).reduce_by_key(operator.add)
        totals = pairs.update_state_by_key(add_to_total)
        totals.save_to_cassandra(keyspace, "totals", ["word", "total"], connection=connection)
        return totals

    run_batches([batches], pipeline, engine=executors.engine)
    rows = cql.execute(f"SELECT word, total, writetime(total) AS t FROM {keyspace}.totals")
    table = {r.word: (r.total, r.t) for r in rows}
    expected = Counter(w for b in batches for w in b)
    assert {w: total for w, (total, _) in table.items()} == expected
    # run_batches' clock starts at 1000 s; every key is rewritten by the last batch.
    last_batch_ms = (1000 + len(batches)) * 1000
    assert {t for _, t in table.values()} == {last_batch_ms * 1000}


@dataclass(frozen=True)
class Write:
    batch_time: int
    values: dict[int, str]


writes = st.lists(
    st.builds(
        Write,
        st.integers(1, 6).map(lambda i: i * 1000),
        st.dictionaries(st.integers(0, 40), st.text(max_size=8), max_size=30),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(writes=writes, replays=st.lists(st.integers(0, 5), max_size=4))
def test_any_order_of_batches_and_replays_leaves_the_latest_batch_per_cell(
    executors: Cluster,
    connection: CassandraConnection,
    cql: Session,
    versioned_table: str,
    writes: list[Write],
    replays: list[int],
) -> None:
    """Batches arriving in any order, some replayed after later ones (a driver restarted on
    an older checkpoint): each cell holds the value of the latest batch time that wrote it,
    as Cassandra's last-write-wins on the batch-time timestamps promises."""
    run = uuid.uuid4().hex
    out = sink(connection, *versioned_table.split("."), ["run", "k", "v"])
    order = writes + [writes[i % len(writes)] for i in replays]
    for write in order:
        records = [(run, k, v) for k, v in write.values.items()]
        out(write.batch_time, executors.engine.parallelize(records, 3))
    expected: dict[int, tuple[int, str]] = {}
    for write in writes:
        for k, v in write.values.items():
            # Equal batch times tie on the timestamp; Cassandra then keeps the greater value.
            best = expected.get(k)
            if best is None or (write.batch_time, v.encode()) > (best[0], best[1].encode()):
                expected[k] = (write.batch_time, v)
    rows = cql.execute(f"SELECT k, v FROM {versioned_table} WHERE run = %s", [run])
    assert {r.k: r.v for r in rows} == {k: v for k, (_, v) in expected.items()}


@pytest.fixture(scope="module")
def versioned_table(cql: Session) -> str:
    keyspace = f"ks_{uuid.uuid4().hex[:10]}"
    cql.execute(
        f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy',"
        " 'replication_factor': 1}"
    )
    cql.execute(f"CREATE TABLE {keyspace}.kv (run text, k int, v text, PRIMARY KEY (run, k))")
    return f"{keyspace}.kv"


def test_a_later_batch_is_not_undone_by_replaying_an_earlier_one(
    executors: Cluster, connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.kv (k int PRIMARY KEY, v text)")
    out = sink(connection, keyspace, "kv", ["k", "v"])
    engine = executors.engine
    first = [(k, f"first-{k}") for k in range(300)]
    later = [(k, f"later-{k}") for k in range(0, 300, 3)]
    out(1_000, engine.parallelize(first, 4))
    out(2_000, engine.parallelize(later, 4))

    def table() -> dict[int, str]:
        return {r.k: r.v for r in cql.execute(f"SELECT k, v FROM {keyspace}.kv")}

    expected = dict(first) | dict(later)
    assert table() == expected
    out(1_000, engine.parallelize(first, 2))  # the earlier batch again, after the later one
    assert table() == expected
    out(2_000, engine.parallelize(later, 5))
    assert table() == expected
    assert out.rows_written == 2 * (len(first) + len(later))


def batch_warnings(server: CassandraServer) -> int:
    log = (server.broker.directory / "cassandra.log").read_text(errors="replace")
    return log.count("exceeding specified threshold")


def test_rows_of_a_wide_partition_go_in_batches_the_server_does_not_warn_about(
    executors: Cluster,
    connection: CassandraConnection,
    cql: Session,
    keyspace: str,
    cassandra_server: CassandraServer,
) -> None:
    """Batches hold one partition key each, which Cassandra exempts from its batch size
    warning (CASSANDRA-10876); their byte budget is checked by the unit tests of
    chunk_by_key. A batch over several partitions, written by a plain client, shows the
    server does warn, so the check here can fail."""
    cql.execute(f"CREATE TABLE {keyspace}.wide (p int, c int, v text, PRIMARY KEY (p, c))")
    records = [(p, c, f"{p}-{c}-" + "x" * 60) for p in range(3) for c in range(800)]
    before = batch_warnings(cassandra_server)
    out = sink(connection, keyspace, "wide", ["p", "c", "v"])
    out(1_000, executors.engine.parallelize(records, 2))
    rows = cql.execute(f"SELECT p, c, v FROM {keyspace}.wide")
    assert sorted((r.p, r.c, r.v) for r in rows) == sorted(records)
    assert batch_warnings(cassandra_server) == before

    insert = cql.prepare(f"INSERT INTO {keyspace}.wide (p, c, v) VALUES (?, ?, ?)")
    spread = BatchStatement(batch_type=BatchType.UNLOGGED)
    for p in range(100):
        spread.add(insert, (100 + p, 0, "y" * 100))
    cql.execute(spread)
    assert batch_warnings(cassandra_server) > before


@dataclass(frozen=True)
class Total:
    word: str
    total: int


def test_bad_records_are_counted_skipped_and_kept_as_dead_letters(
    executors: Cluster,
    connection: CassandraConnection,
    cql: Session,
    keyspace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.totals (word text PRIMARY KEY, total bigint)")
    good = [("ant", 1), {"word": "bee", "total": 2}, Total("cat", 3), ["dog", 4]]
    bad = [
        ("eel", 5, "extra"),  # three fields for two columns
        (None, 6),  # None in the primary key
        ("fox", "seven"),  # text for a bigint
        {"word": "gnu"},  # no total
        Total("hen", 2**70),  # too big for a bigint
    ]
    records = [*good, *bad]
    random.Random(3).shuffle(records)
    dead = tmp_path / "dead"
    out = sink(
        connection,
        keyspace,
        "totals",
        ["word", "total"],
        on_bad_record="skip",
        dead_letter_dir=str(dead),
    )
    with caplog.at_level(logging.WARNING):
        out(1_000, executors.engine.parallelize(records, 1))
    table = {r.word: r.total for r in cql.execute(f"SELECT word, total FROM {keyspace}.totals")}
    assert table == {"ant": 1, "bee": 2, "cat": 3, "dog": 4}
    assert out.bad_records == len(bad) and out.rows_written == len(good)
    letters = [
        json.loads(line) for f in dead.rglob("*.jsonl") for line in f.read_text().splitlines()
    ]
    assert sorted(d["position"] for d in letters) == sorted(records.index(b) for b in bad)
    assert {d["record"] for d in letters} == {repr(b) for b in bad}
    assert "5 records not written" in caplog.text

    strict = sink(connection, keyspace, "totals", ["word", "total"])
    with pytest.raises(JobFailedError) as failure:
        strict(2_000, executors.engine.parallelize([("ant", 9), ("fox", "seven")], 1))
    assert "column 'total'" in str(failure.value) or "total" in str(failure.value)
    assert "on_bad_record='skip'" in str(failure.value)


def test_records_skipped_on_executors_reach_the_drivers_status_and_metrics(
    executors: Cluster, connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.totals (word text PRIMARY KEY, total bigint)")
    batches = [[("ant", 1), ("bee", "two"), ("cat", 3)], [("dog", 2**70), ("eel", 5)]]
    seen: list[tuple[dict[str, Any], dict[str, float]]] = []

    def pipeline(pairs: DStream[tuple[str, Any]]) -> DStream[tuple[str, Any]]:
        pairs.save_to_cassandra(
            keyspace, "totals", ["word", "total"], connection=connection, on_bad_record="skip"
        )

        def observe(rdd: Any) -> None:  # the next output: runs after the save, in order
            ssc = pairs.env.context
            assert ssc is not None
            (doc,) = context_status(ssc, "test")["outputs"]
            registry = CollectorRegistry()
            registry.register(OutputsCollector(ssc.graph))
            samples = {
                s.name: s.value
                for metric in registry.collect()
                for s in metric.samples
                if s.name.endswith("_total")
            }
            seen.append((doc, samples))

        pairs.foreach_rdd(observe)
        return pairs

    run_batches([batches], pipeline, engine=executors.engine)
    written, bad = (
        [doc["rows_written"] for doc, _ in seen],
        [doc["bad_records"] for doc, _ in seen],
    )
    assert (written, bad) == ([2, 3], [1, 2])
    doc, samples = seen[-1]
    assert doc["kind"] == "cassandra" and doc["table"] == f"{keyspace}.totals"
    assert samples == {
        "kubestream_output_rows_written_total": 3,
        "kubestream_output_bad_records_total": 2,
    }


def test_tables_that_cannot_take_the_rows_are_refused_before_writing(
    executors: Cluster, connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.hits (page text PRIMARY KEY, n counter)")
    cql.execute(f"CREATE TABLE {keyspace}.kv (a int, b int, v text, PRIMARY KEY (a, b))")
    empty = executors.engine.parallelize([], 1)
    cases = [
        (sink(connection, keyspace, "hits"), "counter table"),
        (sink(connection, keyspace, "nope"), "does not exist"),
        (sink(connection, "no_such_keyspace", "kv"), "keyspace 'no_such_keyspace'"),
        (sink(connection, keyspace, "kv", ["a", "b", "w"]), "no column 'w'"),
        (sink(connection, keyspace, "kv", ["a", "v"]), "primary key column(s) b"),
    ]
    for out, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            out(1_000, empty)


def test_an_allowed_counter_table_adds_each_record_once(
    executors: Cluster, connection: CassandraConnection, cql: Session, keyspace: str
) -> None:
    cql.execute(
        f"CREATE TABLE {keyspace}.hits (page text, day int, n counter, PRIMARY KEY (page, day))"
    )
    rng = random.Random(8)
    records = [(rng.choice(WORDS), rng.randint(1, 3), rng.randint(1, 5)) for _ in range(300)]
    out = sink(connection, keyspace, "hits", ["page", "day", "n"], allow_counter_tables=True)
    out(1_000, executors.engine.parallelize(records, 3))
    expected: Counter[tuple[str, int]] = Counter()
    for page, day, n in records:
        expected[page, day] += n
    rows = cql.execute(f"SELECT page, day, n FROM {keyspace}.hits")
    assert {(r.page, r.day): r.n for r in rows} == expected


def test_wrong_credentials_fail_without_showing_the_password(
    executors: Cluster,
    cassandra_server: CassandraServer,
    keyspace: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = f"not-the-password-{uuid.uuid4().hex}"
    monkeypatch.setenv("KUBESTREAM_TEST_WRONG_USER", cassandra_server.username)
    monkeypatch.setenv("KUBESTREAM_TEST_WRONG_PASSWORD", secret)
    wrong = CassandraConnection(
        contact_points=(cassandra_server.host,),
        port=cassandra_server.port,
        username_env="KUBESTREAM_TEST_WRONG_USER",
        password_env="KUBESTREAM_TEST_WRONG_PASSWORD",
    )
    assert secret not in repr(wrong)
    with caplog.at_level(logging.DEBUG), pytest.raises(NoHostAvailable) as failure:
        sink(wrong, keyspace, "kv")(1_000, executors.engine.parallelize([], 1))
    assert "password" in str(failure.value).lower() or "credentials" in str(failure.value).lower()
    assert secret not in str(failure.value)
    assert secret not in caplog.text
    monkeypatch.delenv("KUBESTREAM_TEST_WRONG_PASSWORD")
    with pytest.raises(ConfigError, match="KUBESTREAM_TEST_WRONG_PASSWORD is not set"):
        sink(wrong, keyspace, "kv")(1_000, executors.engine.parallelize([], 1))
    assert "KUBESTREAM_TEST_WRONG_PASSWORD" not in os.environ


def test_tls_verified_against_the_ca_from_a_file_or_a_secret_reference(
    executors: Cluster,
    connection: CassandraConnection,
    cassandra_server: CassandraServer,
    cql: Session,
    keyspace: str,
    tmp_path: Path,
) -> None:
    cql.execute(f"CREATE TABLE {keyspace}.kv (k int PRIMARY KEY, v text)")
    records = [(k, f"v{k}") for k in range(50)]
    from_file = dataclasses.replace(connection, ssl_ca_file=str(cassandra_server.ca_location))
    sink(from_file, keyspace, "kv", ["k", "v"])(1_000, executors.engine.parallelize(records, 2))
    assert {r.k: r.v for r in cql.execute(f"SELECT k, v FROM {keyspace}.kv")} == dict(records)
    # The CA's PEM text in an environment variable, as secretRefs give it to every pod.
    later = [(k, f"w{k}") for k in range(50)]
    from_env = dataclasses.replace(connection, ssl_ca_env=CA_ENV)
    sink(from_env, keyspace, "kv", ["k", "v"])(2_000, executors.engine.parallelize(later, 2))
    assert {r.k: r.v for r in cql.execute(f"SELECT k, v FROM {keyspace}.kv")} == dict(later)
    # Another CA's certificate is refused: the check is real.
    other_ca, _ = make_tls(tmp_path / "other")
    untrusted = dataclasses.replace(connection, ssl_ca_file=str(other_ca), connect_timeout=5)
    with pytest.raises(NoHostAvailable, match=r"certificate verify failed|CERTIFICATE_VERIFY"):
        sink(untrusted, keyspace, "kv")(2_000, executors.engine.parallelize([], 1))
