"""One text file read as a task reads it: decompressed by extension, split as Hadoop splits,
undecodable bytes handled by the stated policy, a missing file reported, never silent."""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.core.input_files import (
    InputEvent,
    UndecodableRecordError,
    read_fixed_length_file,
    read_text_file,
)
from tests.unit.test_lines import TRICKY, hadoop_records

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "": lambda b: b,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".lzma": lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
    ".zst": lambda b: zstandard.ZstdCompressor().compress(b),
    ".GZ": gzip.compress,
}


def read(path: Path, policy: str = "replace") -> tuple[list[str], list[InputEvent]]:
    events: list[InputEvent] = []
    return list(read_text_file(str(path), "utf-8", policy, events.append)), events


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TRICKY), max_size=40), st.sampled_from(sorted(COMPRESSORS)))
def test_every_codec_gives_the_records_of_the_plain_text(
    tmp_path: Path, pieces: list[bytes], extension: str
) -> None:
    data = b"".join(pieces)
    path = tmp_path / f"f{extension}"
    path.write_bytes(COMPRESSORS[extension](data))
    records, events = read(path)
    assert records == [r.decode() for r in hadoop_records(data)]
    assert events == []


def test_a_large_compressed_file_is_read_in_chunks(tmp_path: Path) -> None:
    lines = [f"{i} {'x' * (i % 300)}" for i in range(20_000)]
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress("\r\n".join(lines).encode()))
    assert read(path)[0] == lines


BAD = b"ok 1\nbad \xff\xfe here\nok 2\n\xc3\n"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("replace", ["ok 1", "bad \ufffd\ufffd here", "ok 2", "\ufffd"]),
        ("skip", ["ok 1", "ok 2"]),
    ],
)
def test_undecodable_records_are_replaced_or_skipped_and_counted(
    tmp_path: Path, policy: str, expected: list[str]
) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(BAD)
    records, events = read(path, policy)
    assert records == expected
    assert [(e.path, e.kind, e.records) for e in events] == [(str(path), "undecodable", 2)]
    assert "record 2" in events[0].detail


def test_undecodable_records_fail_the_file_naming_it_under_fail(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(BAD)
    with pytest.raises(UndecodableRecordError, match=r"latin\.txt, record 2, byte 4"):
        read(path, "fail")


def test_a_missing_file_gives_no_records_and_one_event(tmp_path: Path) -> None:
    records, events = read(tmp_path / "gone.txt")
    assert records == []
    assert [(e.kind, e.path) for e in events] == [("missing", str(tmp_path / "gone.txt"))]


def test_a_corrupt_compressed_file_fails_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(b"a\n" * 1000)[:-20])
    with pytest.raises(OSError, match=r"cut\.gz"):
        read(path)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.integers(1, 9))
def test_fixed_length_records_are_the_file_cut_in_equal_pieces(
    tmp_path: Path, data: bytes, length: int
) -> None:
    data = data[: len(data) - len(data) % length]
    path = tmp_path / "records.bin"
    path.write_bytes(data)
    events: list[InputEvent] = []
    got = list(read_fixed_length_file(str(path), length, events.append))
    assert got == [data[i : i + length] for i in range(0, len(data), length)]
    assert events == []


def test_fixed_length_records_of_a_missing_or_torn_file(tmp_path: Path) -> None:
    events: list[InputEvent] = []
    assert list(read_fixed_length_file(str(tmp_path / "gone"), 4, events.append)) == []
    assert [e.kind for e in events] == ["missing"]
    torn = tmp_path / "torn.bin"
    torn.write_bytes(b"12345")
    with pytest.raises(ValueError, match=r"torn\.bin: 5 bytes is not a whole number of 4-byte"):
        list(read_fixed_length_file(str(torn), 4))
