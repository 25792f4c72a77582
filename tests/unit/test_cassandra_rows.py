"""The Cassandra sink's pure parts: records to column values, grouping statements into
single-partition batches under a byte budget, settings checks; against plain references."""

from __future__ import annotations

import itertools
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import CassandraConnection, ConfigError
from kubestream.streaming.sinks.cassandra.config import WriteOptions
from kubestream.streaming.sinks.cassandra.rows import (
    BadRecord,
    ColumnMapping,
    TablePlan,
    chunk_by_key,
)
from kubestream.streaming.sinks.cassandra.writer import statement_cql

items = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 300)), max_size=200)


@given(items=items, budget=st.integers(0, 1000))
def test_chunks_hold_one_key_each_keep_order_and_stay_within_the_budget(
    items: list[tuple[int, int]], budget: int
) -> None:
    tagged = [(key, size, (i, key, size)) for i, (key, size) in enumerate(items)]
    chunks = chunk_by_key(tagged, budget)
    flat = [item for chunk in chunks for item in chunk]
    assert sorted(flat) == [t[2] for t in tagged]  # every item once
    for chunk in chunks:
        assert chunk and len({key for _, key, _ in chunk}) == 1
        assert len(chunk) == 1 or sum(size for _, _, size in chunk) <= budget
        assert [i for i, _, _ in chunk] == sorted(i for i, _, _ in chunk)
    # Greedy: a chunk ends only where the next item of its key would not fit.
    by_key: dict[int, list[list[tuple[int, int, int]]]] = {}
    for chunk in chunks:
        by_key.setdefault(chunk[0][1], []).append(chunk)
    for key_chunks in by_key.values():
        for chunk, after in itertools.pairwise(key_chunks):
            assert sum(s for _, _, s in chunk) + after[0][2] > budget


Pair = namedtuple("Pair", "word total")


@dataclass(frozen=True)
class Total:
    word: str
    total: int


@given(word=st.text(min_size=1), total=st.integers())
def test_tuples_mappings_and_objects_map_to_the_same_values(word: str, total: int) -> None:
    by_name = ColumnMapping.of(["word", "total"])
    key = ("word",)
    for record in ((word, total), [word, total], {"word": word, "total": total, "x": 1}):
        assert by_name.values(record, key) == [word, total]
    assert by_name.values(Total(word, total), key) == [word, total]
    assert by_name.values(Pair(word, total), key) == [word, total]
    mapped = ColumnMapping.of({"word": 1, "total": 0})
    assert mapped.values((total, word), key) == [word, total]
    renamed = ColumnMapping.of({"word": "w", "total": "n"})
    assert renamed.values({"w": word, "n": total}, key) == [word, total]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (("a", 1, 2), "3 fields for 2 columns"),
        ({"word": "a"}, "column 'total'"),
        (Total("a", 1).__dict__ | {"word": None}, "primary key"),
        ((None, 1), "primary key"),
        (42, "no field 'word'"),
    ],
)
def test_a_record_that_cannot_be_a_row_names_the_column(record: Any, message: str) -> None:
    with pytest.raises(BadRecord, match=message):
        ColumnMapping.of(["word", "total"]).values(record, ("word",))


def test_none_outside_the_primary_key_is_a_null() -> None:
    assert ColumnMapping.of(["word", "total"]).values(("a", None), ("word",)) == ["a", None]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ColumnMapping.of("word"), "sequence of column names"),
        (lambda: ColumnMapping.of(["a", "a"]), "distinct"),
        (lambda: ColumnMapping.of({"a": 1.5}), "key, attribute name or tuple index"),
        (lambda: WriteOptions(consistency_level="SERIAL"), "consistency_level"),
        (lambda: WriteOptions(ttl=0), "ttl"),
        (lambda: WriteOptions(concurrency=0), "concurrency"),
        (lambda: WriteOptions(on_bad_record="drop"), "on_bad_record"),
        (lambda: WriteOptions(dead_letter_dir="/x"), "needs on_bad_record='skip'"),
        (lambda: CassandraConnection(contact_points="host"), "contact_points"),
        (lambda: CassandraConnection(username_env="U"), "both username_env"),
        (lambda: CassandraConnection(ssl_cert_file="c", ssl_key_file="k"), "ssl_ca_file"),
        (lambda: CassandraConnection(ssl_ca_file="a", ssl_ca_env="B"), "not both"),
    ],
)
def test_bad_settings_are_refused_by_name(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_consistency_level_is_case_insensitive() -> None:
    assert WriteOptions(consistency_level="local_one").consistency_level == "LOCAL_ONE"


def test_credentials_come_from_the_environment_and_are_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection = CassandraConnection(username_env="CASS_U", password_env="CASS_P")
    monkeypatch.setenv("CASS_U", "app")
    monkeypatch.setenv("CASS_P", "s3cret-value")
    assert connection.credentials() == ("app", "s3cret-value")
    assert "s3cret" not in repr(connection)
    monkeypatch.delenv("CASS_P")
    with pytest.raises(ConfigError, match="CASS_P is not set"):
        connection.credentials()


def test_the_insert_carries_the_write_timestamp_and_quotes_names() -> None:
    plan = TablePlan("ks", "Totals", ("word", "select"), ("word",))
    assert statement_cql(plan, None) == (
        'INSERT INTO ks."Totals" (word, "select") VALUES (?, ?) USING TIMESTAMP ?'
    )
    assert statement_cql(plan, 60).endswith("USING TIMESTAMP ? AND TTL ?")


def test_a_counter_table_is_updated_with_increments_bound_before_the_key() -> None:
    plan = TablePlan("ks", "hits", ("n", "page", "day", "m"), ("page", "day"), ("n", "m"))
    assert statement_cql(plan, None) == (
        "UPDATE ks.hits SET n = n + ?, m = m + ? WHERE page = ? AND day = ?"
    )
    values = ["N", "PAGE", "DAY", "M"]
    assert [values[i] for i in plan.bind_order] == ["N", "M", "PAGE", "DAY"]
