"""Large files read as byte-range splits: whatever the cuts and the contents, the splits
together give the whole file's records, each exactly once and in order (Hadoop's rule),
and a batch of one big file is shared by the executors."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.core import input_files
from kubestream.core.input_files import (
    InputEvent,
    byte_ranges,
    read_fixed_length_file,
    read_text_file,
    split_bytes,
)
from tests.unit.test_lines import TRICKY, hadoop_records

FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture]


def read_splits(path: Path, ranges: list[tuple[int, int | None]]) -> list[list[str]]:
    return [list(read_text_file(str(path), "utf-8", "fail", None, a, b)) for a, b in ranges]


def ranges_at(cuts: list[int], size: int) -> list[tuple[int, int | None]]:
    points = sorted({c % (size + 1) for c in cuts} - {0})
    return list(itertools.pairwise([0, *points, None]))  # type: ignore[list-item]


@settings(max_examples=300, suppress_health_check=FUNCTION_SCOPED, deadline=None)
@given(
    st.lists(st.sampled_from(TRICKY), max_size=60),
    st.lists(st.integers(0, 500), max_size=8),
    st.sampled_from([1, 2, 3, 7, 1 << 20]),
)
def test_splits_cut_anywhere_give_every_record_once_in_order(
    tmp_path: Path, pieces: list[bytes], cuts: list[int], chunk: int
) -> None:
    data = b"".join(pieces)
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    # Small read sizes put every terminator, \r\n included, across a chunk edge too.
    with (
        mock.patch.object(input_files, "CHUNK_BYTES", chunk),
        mock.patch.object(input_files, "SCAN_BYTES", chunk),
    ):
        splits = read_splits(path, ranges_at(cuts, len(data)))
    assert [r for split in splits for r in split] == [r.decode() for r in hadoop_records(data)]


@pytest.mark.parametrize("tail", [b"", b"last"])
def test_a_crlf_across_every_cut_is_one_terminator(tmp_path: Path, tail: bytes) -> None:
    data = b"ab\r\ncd\r\r\n\n\ref\r\n" + tail
    path = tmp_path / "crlf.txt"
    path.write_bytes(data)
    expected = [r.decode() for r in hadoop_records(data)]
    for cut in range(len(data) + 1):
        splits = read_splits(path, [(0, cut), (cut, None)])
        assert splits[0] + splits[1] == expected, cut


@given(st.integers(0, 10**7), st.integers(1000, 10**8), st.integers(1, 64))
def test_byte_ranges_tile_the_file_at_aligned_cuts(size: int, target: int, align: int) -> None:
    ranges = byte_ranges(size, target, align)
    starts = [a for a, _ in ranges]
    stops = [b for _, b in ranges]
    assert starts[0] == 0 and stops[-1] is None
    assert starts[1:] == stops[:-1]
    assert all(a % align == 0 for a in starts)
    assert all(a < b for a, b in itertools.pairwise(starts))
    assert len(ranges) <= max(1, -(-size // target))


def test_a_batch_is_shared_by_the_parallelism_within_the_bounds() -> None:
    assert split_bytes(10 << 20, 2) == 5 << 20
    assert split_bytes(100, 2) == input_files.MIN_SPLIT_BYTES
    assert split_bytes(1 << 40, 2) == input_files.MAX_SPLIT_BYTES
    assert byte_ranges(None, 1) == [(0, None)]
    assert len(byte_ranges(10 << 20, split_bytes(10 << 20, 2))) == 2


@settings(max_examples=50, suppress_health_check=FUNCTION_SCOPED)
@given(st.binary(max_size=2000), st.integers(1, 9), st.integers(1, 400))
def test_fixed_length_splits_give_every_record_once(
    tmp_path: Path, data: bytes, length: int, target: int
) -> None:
    data = data[: len(data) - len(data) % length]
    path = tmp_path / "records.bin"
    path.write_bytes(data)
    got = [
        r
        for a, b in byte_ranges(len(data), target, length)
        for r in read_fixed_length_file(str(path), length, None, a, b)
    ]
    assert got == [data[i : i + length] for i in range(0, len(data), length)]


def test_a_missing_file_is_reported_once_by_its_first_split(tmp_path: Path) -> None:
    events: list[InputEvent] = []
    gone = str(tmp_path / "gone")
    for a, b in [(0, 10), (10, 20), (20, None)]:
        assert list(read_text_file(gone, report=events.append, start=a, stop=b)) == []
        assert list(read_fixed_length_file(gone, 2, events.append, a, b)) == []
    assert [e.kind for e in events] == ["missing", "missing"]


def test_an_undecodable_record_names_its_split(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\n" * 10 + b"bad \xff\n")
    with pytest.raises(input_files.UndecodableRecordError, match=r"split at byte 15\), record 5"):
        list(read_text_file(str(path), on_decode_error="fail", start=15))


def test_a_compressed_file_is_not_read_as_a_range(tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(b"a\n" * 10))
    with pytest.raises(ValueError, match=r"f\.gz: a compressed file cannot be read as byte range"):
        list(read_text_file(str(path), start=4, stop=8))
