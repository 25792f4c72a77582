"""Where text records end: Hadoop's LineReader rules, shared by every text source.

A record ends at `\\n`, `\\r\\n` or `\\r` and nowhere else (not at the Unicode
separators, form feed or other characters `str.splitlines` breaks at, which occur
inside JSON and CSV fields). Text after the last terminator is one more record;
an empty input has none. The directory source and the socket receiver both feed
bytes through `LineSplitter`, so one input gives the same records from either.

The splitter is incremental and linear in its input: a chunk is scanned once and
a partial record is kept as a list of pieces, never re-joined per chunk. A record
longer than `max_record_bytes` is not kept: its bytes are skipped up to its end
and it is counted in `dropped`, so one endless line costs bounded memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_TERMINATOR = re.compile(rb"\r\n|\r|\n")

LINE_TERMINATORS = ("\n", "\r\n", "\r")
"""What ends a text record, as Hadoop's LineReader (TextInputFormat) has it."""


class LineSplitter:
    """Bytes in, complete records (bytes, without their terminator) out.

    Feed chunks in order with `feed`, then call `finish` at the end of input. A
    `\\r` that ends one chunk and a `\\n` that starts the next are one terminator.
    """

    def __init__(self, max_record_bytes: int | None = None) -> None:
        self.max_record_bytes = max_record_bytes
        self.dropped = 0
        """Records longer than max_record_bytes, skipped so far."""
        self._pieces: list[bytes] = []
        self._size = 0
        self._skip_lf = False
        self._discarding = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes of the partial record held now: at most max_record_bytes."""
        return self._size

    def feed(self, chunk: bytes) -> list[bytes]:
        """The records `chunk` completes, in order."""
        start = 0
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                start = 1
        records: list[bytes] = []
        for match in _TERMINATOR.finditer(chunk, start):
            self._add(chunk, start, match.start())
            self._end_record(records)
            start = match.end()
        if start < len(chunk):
            self._add(chunk, start, len(chunk))
        elif chunk and chunk[-1:] == b"\r":
            self._skip_lf = True
        return records

    def finish(self) -> list[bytes]:
        """The record after the last terminator, if any bytes follow it."""
        records: list[bytes] = []
        if self._size or self._discarding:
            self._end_record(records)
        self._skip_lf = False
        return records

    def _add(self, chunk: bytes, start: int, stop: int) -> None:
        if stop <= start or self._discarding:
            return
        self._size += stop - start
        if self.max_record_bytes is not None and self._size > self.max_record_bytes:
            self._pieces, self._size, self._discarding = [], 0, True
            return
        self._pieces.append(chunk[start:stop])

    def _end_record(self, records: list[bytes]) -> None:
        if self._discarding:
            self.dropped += 1
        else:
            records.append(b"".join(self._pieces))
        self._pieces, self._size, self._discarding = [], 0, False


def split_records(chunks: Iterable[bytes], max_record_bytes: int | None = None) -> Iterator[bytes]:
    """Every record of the concatenated `chunks` (a convenience over LineSplitter)."""
    splitter = LineSplitter(max_record_bytes)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()
