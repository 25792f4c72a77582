"""docs/pyspark-names.md and the README's operator lists name only what the API offers,
and the table leaves no public PySpark-facing operator of kubestream out."""

from __future__ import annotations

import re
from pathlib import Path

from kubestream import DStream, State, StreamingContext
from kubestream.core.rdd import RDD

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"DStream": DStream, "StreamingContext": StreamingContext, "RDD": RDD}
ATTRIBUTES = {"engine", "id", "num_partitions"}  # set in __init__, so not on the class


def _tables() -> dict[str, list[tuple[str, str]]]:
    """(PySpark cell, kubestream cell) of every row, per section."""
    tables: dict[str, list[tuple[str, str]]] = {}
    section = ""
    for line in (ROOT / "docs" / "pyspark-names.md").read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("| ") and not line.startswith("| PySpark") and section:
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables.setdefault(section, []).append((cells[0], cells[1]))
    return tables


def _names(cell: str) -> list[str]:
    return re.findall(r"`(?:[A-Za-z]+\.)?([a-z_]+)[(`]", cell)


def test_every_kubestream_name_in_the_table_exists() -> None:
    tables = _tables()
    assert set(tables) == set(SECTIONS)
    for section, rows in tables.items():
        for _, ours in rows:
            for name in _names(ours):
                owner = DStream if ours.startswith("`DStream.") else SECTIONS[section]
                exists = hasattr(owner, name) or name in ATTRIBUTES
                assert exists, f"{section}: {name} in the table is not in the API"


def test_every_public_method_is_in_the_table() -> None:
    tables = _tables()
    internal = {"compute", "describe", "is_time_valid", "get_or_compute", "clear_metadata"}
    internal |= {"plan", "narrow_parents", "shuffle_dependencies", "preferred_executors"}
    internal |= {"state_read"}
    internal |= {"slide_ms", "wait_for_batch", "batches", "count_by_value_rdd"}
    internal |= {"remember"}  # DStream.remember(ms) is the graph's; the user's is the context's
    for section, cls in SECTIONS.items():
        listed = {n for _, ours in tables[section] for n in _names(ours)}
        public = {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}
        missing = public - listed - internal
        assert not missing, f"{section}: {sorted(missing)} missing from docs/pyspark-names.md"


def test_readme_operator_names_exist() -> None:
    """The operator paragraph and the windows-and-state paragraph name real methods."""
    readme = (ROOT / "README.md").read_text()
    operators = readme[
        readme.index("Spark's operators under PEP 8 names") : readme.index("Sources:")
    ]
    windows = readme[readme.index("### Windows and state") : readme.index("### Reference")]
    owners = (DStream, StreamingContext, RDD, State)
    for name in re.findall(r"`([a-z][a-z_]*)(?:\(|`)", operators + windows):
        assert any(hasattr(o, name) for o in owners) or name in {"fn", "filter_fn"}, (
            f"README names {name}, which the API lacks"
        )
