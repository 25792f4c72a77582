"""Reading one input file, or one byte range of it, on an executor: text decompressed by
extension, split as Hadoop does, decoded under a stated policy; fixed-length binary
records; what went wrong (a file gone, undecodable records) reported instead of hidden.

Called by the task interpreter (tasks.py) for a FileSource. As Hadoop's codecs
do, the extension picks the decompressor: `.gz`, `.bz2`, `.xz`/`.lzma`, `.zst`.
Text records are split on bytes (lines.py) before decoding, so the encoding must
encode `\\r` and `\\n` as themselves (UTF-8, Latin-1, ASCII ...: checked when the
stream is made, by `check_encoding`).

A large uncompressed file is read as several splits (`byte_ranges`), so the executors
share it. As Hadoop's LineRecordReader, a split [start, stop) reads from the first
record that starts after byte `start` (or at 0) through the record that crosses
`stop`: every record is read by exactly one split, wherever the cuts fall, `\\r\\n`
across a cut included. Compressed files are one split (their codecs cannot seek).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import itertools
import lzma
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import zstandard

from kubestream.core.lines import LineSplitter

CHUNK_BYTES = 1 << 20
SCAN_BYTES = 64 << 10
"""Bytes read at a time while looking for a split's first record."""
MIN_SPLIT_BYTES = 1 << 20
MAX_SPLIT_BYTES = 128 << 20
"""Bounds of a split's size (Spark's spark.sql.files.maxPartitionBytes is the upper one;
the lower one, below Spark's 4 MiB open cost, lets a batch's few-MiB file be shared)."""

DECODE_ERROR_POLICIES = ("replace", "skip", "fail")
"""What a record whose bytes are not text in the encoding becomes: "replace" (kept, each
bad byte as U+FFFD, counted), "skip" (dropped, counted) or "fail" (the task fails, naming
the file and the record)."""

_OPENERS: dict[str, Callable[..., Any]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
    ".lzma": lzma.open,
    ".zst": zstandard.open,
}

COMPRESSED_EXTENSIONS = tuple(sorted(_OPENERS))
"""Extensions read decompressed (Hadoop's codec choice by file name)."""


class UndecodableRecordError(ValueError):
    """A record is not text in the stream's encoding and the policy is "fail"."""


@dataclass(frozen=True, slots=True)
class InputEvent:
    """Something a task met in its input that the driver should count and show.

    kind: "missing" (the file was gone when the task opened it: skipped, no records),
    "undecodable" (`records` records replaced or skipped under the decode policy),
    "data_loss" (`records` records of a Kafka range deleted before they were read and
    skipped; `path` names the topic-partition). `stream_id` is the input stream's id
    when the task's source knows it (file events go by their path instead).
    """

    path: str
    kind: str
    records: int = 0
    detail: str = ""
    stream_id: int | None = None


def check_encoding(encoding: str) -> bool:
    """Whether records of `encoding` can be split on the bytes `\\r` and `\\n`."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return "a\r\nb".encode(encoding) == b"a\r\nb"


def open_decompressed(path: str) -> IO[bytes]:
    """The file's bytes, decompressed when its extension names a codec."""
    opener = _OPENERS.get(os.path.splitext(path)[1].lower(), open)
    stream: IO[bytes] = opener(path, "rb")
    return stream


def is_compressed(path: str) -> bool:
    """Whether the file is read through a codec (and so cannot be split)."""
    return os.path.splitext(path)[1].lower() in _OPENERS


def split_bytes(total_bytes: int, parallelism: int) -> int:
    """Target bytes of a split: the batch's bytes shared by `parallelism` tasks, within
    [MIN_SPLIT_BYTES, MAX_SPLIT_BYTES] (Spark's maxSplitBytes rule)."""
    share = -(-total_bytes // max(1, parallelism))
    return max(MIN_SPLIT_BYTES, min(MAX_SPLIT_BYTES, share))


def byte_ranges(size: int | None, target: int, align: int = 1) -> list[tuple[int, int | None]]:
    """[start, stop) ranges of about `target` bytes covering a file of `size` bytes, cuts
    at multiples of `align` (a fixed record length); the last stop None (to the end).
    `size` None (compressed, or gone) is one range."""
    if size is None or size <= target:
        return [(0, None)]
    pieces = -(-size // target)
    cuts = sorted({size * i // pieces // align * align for i in range(1, pieces)} - {0})
    starts = [0, *cuts]
    return list(zip(starts, [*cuts, None], strict=True))


def _missing(path: str, report: Callable[[InputEvent], None] | None) -> None:
    if report is not None:
        report(InputEvent(path, "missing", detail="gone before its task opened it"))


def read_fixed_length_file(
    path: str,
    record_length: int,
    report: Callable[[InputEvent], None] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[bytes]:
    """The file's records of `record_length` bytes (Hadoop's FixedLengthInputFormat: not
    decompressed) in bytes [start, stop) (multiples of record_length; stop None: to the
    end); a missing file yields none and is reported (by the split at 0 only).

    Raises ValueError, naming the file, when its size is not a whole number of records.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below, in the generator
    except FileNotFoundError:
        if start == 0:
            _missing(path, report)
        return
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size % record_length:
            raise ValueError(
                f"{path}: {size} bytes is not a whole number of {record_length}-byte records"
            )
        stream.seek(start)
        remaining = (size if stop is None else min(stop, size)) - start
        per_read = max(1, CHUNK_BYTES // record_length) * record_length
        while remaining > 0 and (data := stream.read(min(per_read, remaining))):
            remaining -= len(data)
            yield from (data[i : i + record_length] for i in range(0, len(data), record_length))


def read_text_file(
    path: str,
    encoding: str = "utf-8",
    on_decode_error: str = "replace",
    report: Callable[[InputEvent], None] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[str]:
    """The records of the file at `path`, decoded; a missing file yields none and is reported
    (by the split at 0 only). With `start`/`stop` (uncompressed files), the records of that
    split by Hadoop's rule (module docstring); stop None reads to the end.

    Raises UndecodableRecordError (policy "fail"), OSError for an unreadable file, and
    the codec's error (EOFError, OSError) for a corrupt compressed file: each fails the
    task with the path in the message, as a file the job cannot read should.
    """
    # Records flow a chunk's list at a time, so the per-record step is chain's, in C.
    chunks = _text_chunks(path, encoding, on_decode_error, report, start, stop)
    return itertools.chain.from_iterable(chunks)


def record_start_after(stream: IO[bytes], position: int) -> int:
    """Where the first record starting after byte `position - 1` begins: just past the first
    terminator that ends at or after `position` (`\\r\\n` counts as one), or the end of
    the stream; 0 for position 0. Leaves the stream there."""
    if position <= 0:
        stream.seek(0)
        return 0
    stream.seek(position)
    offset = position
    while chunk := stream.read(SCAN_BYTES):
        lf, cr = chunk.find(b"\n"), chunk.find(b"\r")
        if lf >= 0 or cr >= 0:
            at = lf if cr < 0 or 0 <= lf < cr else cr
            after = offset + at + 1
            if chunk[at : at + 1] == b"\r":
                following = chunk[at + 1 : at + 2] or _peek(stream, after)
                after += following == b"\n"
            stream.seek(after)
            return after
        offset += len(chunk)
    return offset


def _peek(stream: IO[bytes], position: int) -> bytes:
    stream.seek(position)
    return stream.read(1)


def _split_stream(path: str, start: int, stop: int | None) -> tuple[IO[bytes], int | None] | None:
    """The file opened at its split's first record, with how many bytes the split reads
    (None: to the end); None when the file is gone."""
    try:
        stream = open_decompressed(path)
    except FileNotFoundError:
        return None
    if start == 0 and stop is None:
        return stream, None
    if is_compressed(path):
        stream.close()
        raise ValueError(f"{path}: a compressed file cannot be read as byte range {start}-{stop}")
    end = None if stop is None else record_start_after(stream, stop)
    begin = record_start_after(stream, start)
    return stream, None if end is None else max(0, end - begin)


def _text_chunks(
    path: str,
    encoding: str,
    on_decode_error: str,
    report: Callable[[InputEvent], None] | None,
    start: int,
    stop: int | None,
) -> Iterator[list[str]]:
    opened = _split_stream(path, start, stop)
    if opened is None:
        if start == 0:
            _missing(path, report)
        return
    stream, remaining = opened
    bad = 0
    first_bad = ""
    splitter = LineSplitter()
    number = 0
    split = f" (split at byte {start})" if start else ""
    try:
        with stream:
            while True:
                size = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                try:
                    chunk = stream.read(size) if size else b""
                except (OSError, EOFError, zstandard.ZstdError) as exc:
                    raise OSError(f"cannot read {path}: {exc}") from exc
                if remaining is not None:
                    remaining -= len(chunk)
                records = splitter.feed(chunk) if chunk else splitter.finish()
                try:
                    # One decode for the chunk's records: they hold no "\n" (check_encoding).
                    texts = b"\n".join(records).decode(encoding).split("\n") if records else []
                except UnicodeDecodeError:
                    texts = []
                    for raw in records:
                        number += 1
                        try:
                            texts.append(raw.decode(encoding))
                            continue
                        except UnicodeDecodeError as exc:
                            where = f"{path}{split}, record {number}, byte {exc.start}"
                            where += f": {exc.reason}"
                            if on_decode_error == "fail":
                                raise UndecodableRecordError(
                                    f"{where} is not {encoding} text; pass on_decode_error="
                                    "'replace' or 'skip' to text_file_stream to read on"
                                ) from None
                            bad += 1
                            first_bad = first_bad or where
                        if on_decode_error == "replace":
                            texts.append(raw.decode(encoding, "replace"))
                else:
                    number += len(records)
                yield texts
                if not chunk:
                    break
    finally:
        if bad and report is not None:
            verb = "replaced" if on_decode_error == "replace" else "skipped"
            detail = f"{bad} records not {encoding} text {verb}; first: {first_bad}"
            report(InputEvent(path, "undecodable", bad, detail))
