"""The output operation save_to_cassandra registers: fn(batch_time, rdd) on the driver.

Before the first batch it checks the table (exists, not a counter table unless
allowed, the columns and the whole primary key known); then each batch runs one
PartitionWriter task per partition on the executors and adds up what they wrote
and refused.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kubestream.streaming.sinks.cassandra.config import CassandraConnection, WriteOptions
from kubestream.streaming.sinks.cassandra.rows import ColumnMapping, TablePlan
from kubestream.streaming.sinks.cassandra.writer import PartitionWriter, table_plan

if TYPE_CHECKING:
    from kubestream.core.rdd import RDD

log = logging.getLogger(__name__)


class CassandraSink:
    """Writes each batch to `keyspace.table`; `rows_written` and `bad_records` count
    over the sink's life in this driver process."""

    def __init__(
        self,
        connection: CassandraConnection,
        keyspace: str,
        table: str,
        mapping: ColumnMapping | None,
        options: WriteOptions,
    ) -> None:
        self.connection = connection
        self.keyspace = keyspace
        self.table = table
        self.mapping = mapping
        self.options = options
        self.planned: tuple[TablePlan, ColumnMapping] | None = None
        self.rows_written = 0
        self.bad_records = 0

    def output_details(self) -> dict[str, Any]:
        """For the status document and metrics (DStreamGraph.output_details)."""
        return {
            "kind": "cassandra",
            "table": f"{self.keyspace}.{self.table}",
            "rows_written": self.rows_written,
            "bad_records": self.bad_records,
        }

    def __call__(self, batch_time: int, rdd: RDD) -> None:
        if self.planned is None:
            self.planned = table_plan(
                self.connection, self.keyspace, self.table, self.mapping, self.options
            )
        plan, mapping = self.planned
        writer = PartitionWriter(self.connection, plan, mapping, self.options, batch_time)
        results = rdd.map_partitions_with_index(writer).collect()
        written = sum(r.written for r in results)
        bad = [r for r in results if r.bad]
        self.rows_written += written
        self.bad_records += sum(r.bad for r in bad)
        if bad:
            where = f" (dead letters in {self.options.dead_letter_dir})"
            log.warning(
                "batch %d: %d records not written to %s and skipped%s; first, in partition %d: %s",
                batch_time,
                sum(r.bad for r in bad),
                plan.name,
                where if self.options.dead_letter_dir else "",
                bad[0].partition,
                bad[0].first_bad,
            )
        log.debug("batch %d: %d rows written to %s", batch_time, written, plan.name)
