"""Record boundaries: LineSplitter against a plain-Python reader of Hadoop's rule, over any
chunking, with and without a maximum record size."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from kubestream.core.lines import LineSplitter, split_records

# Bytes that end records (\n, \r), and bytes str.splitlines would wrongly end them at:
# VT, FF, FS, GS, RS, NEL (C2 85 in UTF-8), LS and PS (E2 80 A8/A9).
TRICKY = [b"a", b"\xc3\xa9", b"\n", b"\r", b"\r\n", b"\x0b", b"\x0c", b"\x1c", b"\x1d"]
TRICKY += [b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9", b'{"k": "v"}', b" "]


def hadoop_records(data: bytes) -> list[bytes]:
    """Hadoop's LineReader, byte by byte: a record ends at LF, at CR, or at CR LF."""
    records, current, i = [], bytearray(), 0
    while i < len(data):
        byte = data[i : i + 1]
        if byte in {b"\n", b"\r"}:
            records.append(bytes(current))
            current = bytearray()
            if byte == b"\r" and data[i + 1 : i + 2] == b"\n":
                i += 1
        else:
            current += byte
        i += 1
    if current:
        records.append(bytes(current))
    return records


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.lists(st.sampled_from(TRICKY), max_size=60), st.lists(st.integers(0, 400)))
def test_records_end_where_hadoop_ends_them_however_the_bytes_are_chunked(
    pieces: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(pieces)
    assert list(split_records(chunked(data, cuts))) == hadoop_records(data)


@given(
    st.lists(st.sampled_from(TRICKY), max_size=60),
    st.lists(st.integers(0, 400)),
    st.integers(1, 12),
)
def test_records_over_the_maximum_are_dropped_and_counted_with_bounded_buffering(
    pieces: list[bytes], cuts: list[int], limit: int
) -> None:
    data = b"".join(pieces)
    splitter = LineSplitter(max_record_bytes=limit)
    kept: list[bytes] = []
    for chunk in chunked(data, cuts):
        kept += splitter.feed(chunk)
        assert splitter.buffered_bytes <= limit
    kept += splitter.finish()
    reference = hadoop_records(data)
    assert kept == [r for r in reference if len(r) <= limit]
    assert splitter.dropped == sum(1 for r in reference if len(r) > limit)


def test_a_long_record_is_never_held_whole() -> None:
    splitter = LineSplitter(max_record_bytes=1000)
    for _ in range(1000):
        assert splitter.feed(b"x" * 65536) == []
        assert splitter.buffered_bytes == 0
    assert splitter.feed(b"\nafter\n") == [b"after"]
    assert splitter.dropped == 1
