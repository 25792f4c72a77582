"""Reading one input file on an executor: text decompressed by extension, split as Hadoop
does, decoded under a stated policy; fixed-length binary records; what went wrong (a file
gone, undecodable records) reported instead of hidden.

Called by the task interpreter (tasks.py) for a FileSource. As Hadoop's codecs
do, the extension picks the decompressor: `.gz`, `.bz2`, `.xz`/`.lzma`, `.zst`.
Text records are split on bytes (lines.py) before decoding, so the encoding must
encode `\\r` and `\\n` as themselves (UTF-8, Latin-1, ASCII ...: checked when the
stream is made, by `check_encoding`).
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


def _missing(path: str, report: Callable[[InputEvent], None] | None) -> None:
    if report is not None:
        report(InputEvent(path, "missing", detail="gone before its task opened it"))


def read_fixed_length_file(
    path: str, record_length: int, report: Callable[[InputEvent], None] | None = None
) -> Iterator[bytes]:
    """The file's records of `record_length` bytes (Hadoop's FixedLengthInputFormat: not
    decompressed); a missing file yields none and is reported.

    Raises ValueError, naming the file, when its size is not a whole number of records.
    """
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed by the with below, in the generator
    except FileNotFoundError:
        _missing(path, report)
        return
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size % record_length:
            raise ValueError(
                f"{path}: {size} bytes is not a whole number of {record_length}-byte records"
            )
        per_read = max(1, CHUNK_BYTES // record_length) * record_length
        while data := stream.read(per_read):
            yield from (data[i : i + record_length] for i in range(0, len(data), record_length))


def read_text_file(
    path: str,
    encoding: str = "utf-8",
    on_decode_error: str = "replace",
    report: Callable[[InputEvent], None] | None = None,
) -> Iterator[str]:
    """The records of the file at `path`, decoded; a missing file yields none and is reported.

    Raises UndecodableRecordError (policy "fail"), OSError for an unreadable file, and
    the codec's error (EOFError, OSError) for a corrupt compressed file: each fails the
    task with the path in the message, as a file the job cannot read should.
    """
    # Records flow a chunk's list at a time, so the per-record step is chain's, in C.
    return itertools.chain.from_iterable(_text_chunks(path, encoding, on_decode_error, report))


def _text_chunks(
    path: str,
    encoding: str,
    on_decode_error: str,
    report: Callable[[InputEvent], None] | None,
) -> Iterator[list[str]]:
    try:
        stream = open_decompressed(path)
    except FileNotFoundError:
        _missing(path, report)
        return
    bad = 0
    first_bad = ""
    splitter = LineSplitter()
    number = 0
    try:
        with stream:
            while True:
                try:
                    chunk = stream.read(CHUNK_BYTES)
                except (OSError, EOFError, zstandard.ZstdError) as exc:
                    raise OSError(f"cannot read {path}: {exc}") from exc
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
                            where = f"{path}, record {number}, byte {exc.start}: {exc.reason}"
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
