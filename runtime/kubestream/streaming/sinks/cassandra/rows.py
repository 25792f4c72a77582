"""From records to the column values of a table's rows, and which records are bad.

Pure: the writer calls `ColumnMapping.values` for each record and gets the values in
the order of the prepared INSERT's columns, or a BadRecord saying which column and
why. A record maps to a row in one of three ways: a tuple or list by position, a
mapping by key, any other object (dataclass, named tuple) by attribute.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kubestream.errors import ConfigError, KubestreamError

S = TypeVar("S")
"""A statement, or any item the chunking below groups."""


class BadRecord(Exception):  # noqa: N818  (a value: the reason a record is not written)
    """A record that cannot become a row; the message names the column, never the value."""


class BadRecordError(KubestreamError):
    """A batch held a record that cannot be written and the policy is on_bad_record='fail'."""


@dataclass(frozen=True)
class TablePlan:
    """What the writer needs to know of the table: its name, the columns written (in the
    order records are mapped), its primary key columns (which can never be null) and,
    for a counter table, its counter columns (written as increments)."""

    keyspace: str
    table: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    counters: tuple[str, ...] = ()

    @property
    def bind_order(self) -> tuple[int, ...]:
        """Indexes into `columns` in the statement's order: an UPDATE of a counter table
        binds the increments first, then the primary key."""
        if not self.counters:
            return tuple(range(len(self.columns)))
        first = [c for c in self.columns if c in self.counters]
        rest = [c for c in self.columns if c not in self.counters]
        return tuple(self.columns.index(c) for c in [*first, *rest])

    @property
    def name(self) -> str:
        return f"{self.keyspace}.{self.table}"


Field = str | int
"""Where a column's value is in a record: a key or attribute name, or a tuple index."""


@dataclass(frozen=True)
class ColumnMapping:
    """columns[i] takes its value from a record's fields[i]; by_position: tuples and lists
    are read by position (the columns were given as a sequence)."""

    columns: tuple[str, ...]
    fields: tuple[Field, ...]
    by_position: bool

    @classmethod
    def of(cls, spec: Sequence[str] | Mapping[str, Field]) -> ColumnMapping:
        """A sequence of column names (tuples by position, others by the same names) or a
        mapping {column: key, attribute or index}."""
        if isinstance(spec, Mapping):
            for column, source in spec.items():
                if not isinstance(column, str) or not column:
                    raise ConfigError(f"save_to_cassandra: a column name must be str: {column!r}")
                if not isinstance(source, str | int) or isinstance(source, bool):
                    raise ConfigError(
                        f"save_to_cassandra: column {column!r} maps to {source!r}; give a key,"
                        " attribute name or tuple index"
                    )
            return cls(tuple(spec), tuple(spec.values()), by_position=False)
        if isinstance(spec, str) or not all(isinstance(c, str) and c for c in spec):
            raise ConfigError(
                f"save_to_cassandra: columns must be a sequence of column names or a mapping"
                f" {{column: field}}, got {spec!r}"
            )
        names = tuple(spec)
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"save_to_cassandra: columns must be distinct, not empty: {names!r}")
        return cls(names, names, by_position=True)

    def values(self, record: Any, primary_key: tuple[str, ...]) -> list[Any]:
        """The record's value for each column; BadRecord if one is missing or a primary key
        column is None."""
        positional = self.by_position and isinstance(record, tuple | list)
        if positional and len(record) != len(self.columns):
            raise BadRecord(
                f"a record of {len(record)} fields for {len(self.columns)} columns"
                f" {', '.join(self.columns)}"
            )
        values = []
        for i, (column, source) in enumerate(zip(self.columns, self.fields, strict=True)):
            try:
                if positional:
                    value = record[i]
                elif isinstance(source, int) or isinstance(record, Mapping):
                    value = record[source]
                else:
                    value = getattr(record, source)
            except (KeyError, IndexError, AttributeError, TypeError):
                raise BadRecord(
                    f"column {column!r}: the {type(record).__name__} record has no field {source!r}"
                ) from None
            if value is None and column in primary_key:
                raise BadRecord(f"column {column!r} is in the primary key and the value is None")
            values.append(value)
        return values


def chunk_by_key(items: Iterable[tuple[Hashable, int, S]], budget: int) -> list[list[S]]:
    """(key, size, item) grouped by key into chunks whose sizes sum to at most `budget`
    (a single item larger than it is a chunk of its own); order within a key is kept.

    The writer's keys are partition keys and its items statements: one chunk is one
    single-partition unlogged batch, kept under the server's batch size warning.
    """
    groups: dict[Hashable, list[list[S]]] = {}
    sizes: dict[Hashable, int] = {}
    for key, size, item in items:
        chunks = groups.setdefault(key, [[]])
        if chunks[-1] and sizes[key] + size > budget:
            chunks.append([])
            sizes[key] = 0
        chunks[-1].append(item)
        sizes[key] = sizes.get(key, 0) + size
    return [chunk for chunks in groups.values() for chunk in chunks]
