"""Writing rows with cassandra-driver: the only module that imports it.

Executors write their partitions (`PartitionWriter`, run by map_partitions_with_index):
one prepared INSERT ... USING TIMESTAMP per table, rows of one partition key grouped
into unlogged batches under a size budget, at most `concurrency` statements in
flight (execute_concurrent). Every write carries the batch time as its write
timestamp, so the statements are idempotent: the driver may retry them, a retried
task or a replayed batch rewrites the same cells, and a later batch's cells win.
The driver uses `table_plan` once, to check the table before the first batch.
Sessions are cached per process and shut down when the job stops (`close_sessions`,
through `kubestream.core.resources`).
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent
from cassandra.metadata import protect_name
from cassandra.policies import DCAwareRoundRobinPolicy, RetryPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from kubestream.core import resources
from kubestream.errors import ConfigError
from kubestream.streaming.sinks.cassandra.config import CassandraConnection, WriteOptions
from kubestream.streaming.sinks.cassandra.rows import (
    BadRecord,
    BadRecordError,
    ColumnMapping,
    TablePlan,
    chunk_by_key,
)

CELL_OVERHEAD_BYTES = 24
"""Added per value when sizing a batch: the server counts cells, not only their bytes."""

_sessions: dict[str, Session] = {}
_prepared: dict[tuple[str, str], PreparedStatement] = {}
_lock = threading.Lock()


class IdempotentWriteRetryPolicy(RetryPolicy):  # type: ignore[misc]
    """Retries a write that timed out or found too few live replicas, only if the statement
    is idempotent (this sink's are), at most `max_retries` times; reads as the default."""

    def __init__(self, max_retries: int = 3) -> None:
        super().__init__()
        self.max_retries = max_retries

    def on_write_timeout(
        self,
        query: Any,
        consistency: int,
        write_type: Any,
        required_responses: int,
        received_responses: int,
        retry_num: int,
    ) -> tuple[int, int | None]:
        if query is not None and query.is_idempotent and retry_num < self.max_retries:
            return self.RETRY, consistency
        return self.RETHROW, None

    def on_unavailable(
        self,
        query: Any,
        consistency: int,
        required_replicas: int,
        alive_replicas: int,
        retry_num: int,
    ) -> tuple[int, int | None]:
        if query is not None and query.is_idempotent and retry_num < self.max_retries:
            return self.RETRY_NEXT_HOST, consistency
        return self.RETHROW, None


def ssl_context(connection: CassandraConnection) -> ssl.SSLContext | None:
    if not connection.tls:
        return None
    context = ssl.create_default_context(cafile=connection.ssl_ca_file, cadata=connection.ca_pem())
    context.check_hostname = connection.check_hostname
    if connection.ssl_cert_file is not None:
        context.load_cert_chain(connection.ssl_cert_file, connection.ssl_key_file)
    return context


def shared_session(connection: CassandraConnection) -> Session:
    """This process's session for `connection` (sessions are thread-safe and pool
    connections), opened on first use with credentials read from the environment."""
    with _lock:
        session = _sessions.get(connection.fingerprint)
        if session is None or session.is_shutdown:
            credentials = connection.credentials()
            profile = ExecutionProfile(
                load_balancing_policy=TokenAwarePolicy(
                    DCAwareRoundRobinPolicy(local_dc=connection.local_dc)
                ),
                retry_policy=IdempotentWriteRetryPolicy(),
                request_timeout=connection.request_timeout,
            )
            cluster = Cluster(
                list(connection.contact_points),
                port=connection.port,
                auth_provider=PlainTextAuthProvider(*credentials) if credentials else None,
                ssl_context=ssl_context(connection),
                execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=connection.connect_timeout,
            )
            session = cluster.connect()
            _sessions[connection.fingerprint] = session
            resources.on_close("cassandra sessions", close_sessions)
        return session


def close_sessions() -> None:
    """Shut down this process's clusters (their sessions, connections and threads) and
    forget their prepared statements; the next write connects again. Called when the
    job stops, so the server sees the sessions close instead of the connections drop."""
    with _lock:
        sessions = list(_sessions.values())
        _sessions.clear()
        _prepared.clear()
    for session in sessions:
        session.cluster.shutdown()


def table_plan(
    connection: CassandraConnection,
    keyspace: str,
    table: str,
    mapping: ColumnMapping | None,
    options: WriteOptions,
) -> tuple[TablePlan, ColumnMapping]:
    """The table's plan and the column mapping (all its columns, in schema order, when
    none was given); ConfigError naming what is missing or refused."""
    session = shared_session(connection)
    session.cluster.refresh_schema_metadata()  # tables made since the session opened
    space = session.cluster.metadata.keyspaces.get(keyspace)
    if space is None:
        raise ConfigError(f"save_to_cassandra: keyspace {keyspace!r} does not exist; create it")
    found = space.tables.get(table)
    if found is None:
        raise ConfigError(f"save_to_cassandra: table {keyspace}.{table} does not exist; create it")
    counters = tuple(name for name, c in found.columns.items() if c.cql_type == "counter")
    if counters and not options.allow_counter_tables:
        raise ConfigError(
            f"save_to_cassandra: {keyspace}.{table} is a counter table ({', '.join(counters)});"
            " counter updates are not idempotent, so a replayed batch would count twice:"
            " pass allow_counter_tables=True to add to them at least once"
        )
    if counters and options.ttl is not None:
        raise ConfigError(f"save_to_cassandra: {keyspace}.{table} is a counter table: no ttl")
    mapping = mapping or ColumnMapping.of(list(found.columns))
    unknown = [c for c in mapping.columns if c not in found.columns]
    if unknown:
        raise ConfigError(
            f"save_to_cassandra: {keyspace}.{table} has no column {', '.join(map(repr, unknown))}"
            f" (its columns: {', '.join(found.columns)})"
        )
    primary_key = tuple(c.name for c in [*found.partition_key, *found.clustering_key])
    missing = [c for c in primary_key if c not in mapping.columns]
    if missing:
        raise ConfigError(
            f"save_to_cassandra: the primary key column(s) {', '.join(missing)} of"
            f" {keyspace}.{table} must be among the columns written"
        )
    return TablePlan(keyspace, table, mapping.columns, primary_key, counters), mapping


def statement_cql(plan: TablePlan, ttl: int | None) -> str:
    """The INSERT of a row at a given write timestamp; for a counter table, the UPDATE
    adding to its counters (counters take no timestamp)."""
    table = f"{protect_name(plan.keyspace)}.{protect_name(plan.table)}"
    if plan.counters:
        written = [c for c in plan.columns if c in plan.counters]
        adds = ", ".join(f"{protect_name(c)} = {protect_name(c)} + ?" for c in written)
        where = " AND ".join(f"{protect_name(c)} = ?" for c in plan.primary_key)
        return f"UPDATE {table} SET {adds} WHERE {where}"
    names = ", ".join(protect_name(c) for c in plan.columns)
    marks = ", ".join("?" for _ in plan.columns)
    using = "USING TIMESTAMP ?" + (" AND TTL ?" if ttl is not None else "")
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) {using}"


def prepared_statement(
    session: Session, connection: CassandraConnection, plan: TablePlan, options: WriteOptions
) -> PreparedStatement:
    cql = statement_cql(plan, options.ttl)
    key = (connection.fingerprint, cql)
    with _lock:
        prepared = _prepared.get(key)
    if prepared is None:
        prepared = session.prepare(cql)
        prepared.is_idempotent = not plan.counters
        prepared.consistency_level = ConsistencyLevel.name_to_value[options.consistency_level]
        with _lock:
            _prepared[key] = prepared
    return prepared


def statement_size(bound: BoundStatement) -> int:
    return sum(len(v) + CELL_OVERHEAD_BYTES for v in bound.values if v is not None)


@dataclass(frozen=True)
class PartitionResult:
    """What one partition's task did: rows written, records refused (and the first reason)."""

    partition: int
    written: int
    bad: int
    first_bad: str | None


@dataclass(frozen=True)
class PartitionWriter:
    """Runs on executors: writes one partition of batch `batch_time`; returns one result."""

    connection: CassandraConnection
    plan: TablePlan
    mapping: ColumnMapping
    options: WriteOptions
    batch_time: int

    @property
    def write_timestamp(self) -> int:
        """Microseconds since the epoch, Cassandra's unit for write timestamps."""
        return self.batch_time * 1000

    def __call__(self, index: int, records: Iterator[Any]) -> Iterator[PartitionResult]:
        session = shared_session(self.connection)
        prepared = prepared_statement(session, self.connection, self.plan, self.options)
        extra = [] if self.plan.counters else [self.write_timestamp]
        extra += [self.options.ttl] if self.options.ttl else []
        order = self.plan.bind_order
        # Counter increments cannot share a batch with other writes: each goes alone.
        budget = 0 if self.plan.counters else self.options.batch_size_bytes
        bound: list[tuple[Any, int, BoundStatement]] = []
        bad: list[tuple[int, str, str]] = []
        for position, record in enumerate(records):
            try:
                values = self.mapping.values(record, self.plan.primary_key)
                statement = prepared.bind([*(values[i] for i in order), *extra])
            except BadRecord as e:
                reason = str(e)
            except (TypeError, ValueError, OverflowError) as e:
                reason = f"a value does not fit its column: {e}"
            else:
                bound.append((statement.routing_key, statement_size(statement), statement))
                continue
            where = f"record {position} of partition {index} (batch {self.batch_time})"
            if self.options.on_bad_record == "fail":
                raise BadRecordError(
                    f"{self.plan.name}: {where}: {reason}; fix the stream's records or pass"
                    " on_bad_record='skip' (with dead_letter_dir to keep them)"
                )
            bad.append((position, reason, repr(record)))
        level = prepared.consistency_level
        statements = [
            chunk[0] if len(chunk) == 1 else unlogged_batch(chunk, level)
            for chunk in chunk_by_key(bound, budget)
        ]
        execute_concurrent(
            session,
            [(s, None) for s in statements],
            concurrency=self.options.concurrency,
            raise_on_first_error=True,
        )
        if bad and self.options.dead_letter_dir is not None:
            self.write_dead_letters(Path(self.options.dead_letter_dir), index, bad)
        yield PartitionResult(index, len(bound), len(bad), bad[0][1] if bad else None)

    def write_dead_letters(self, root: Path, index: int, bad: list[tuple[int, str, str]]) -> None:
        """One JSON line per refused record in DIR/KEYSPACE.TABLE/batch-<ms>-part-<n>.jsonl,
        replaced whole (temp file, rename), so a replayed batch writes the same file."""
        directory = root / self.plan.name
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"batch-{self.batch_time}-part-{index:05d}.jsonl"
        lines = [
            json.dumps(
                {"batch_time": self.batch_time, "partition": index, "position": position}
                | {"reason": reason, "record": record}
            )
            for position, reason, record in bad
        ]
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


def unlogged_batch(statements: list[BoundStatement], level: int) -> BatchStatement:
    """Rows of one partition key in one unlogged batch: one mutation on the replicas."""
    batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=level)
    batch.is_idempotent = True
    for statement in statements:
        batch.add(statement)
    return batch
