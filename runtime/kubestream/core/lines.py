"""Where text records end: Hadoop's LineReader rules, shared by every text source.

A record ends at `\\n`, `\\r\\n` or `\\r` and nowhere else (not at the Unicode
separators, form feed or other characters `str.splitlines` breaks at, which occur
inside JSON and CSV fields). Text after the last terminator is one more record;
an empty input has none. The directory source and the socket receiver both feed
bytes through `LineSplitter`, so one input gives the same records from either.

The splitter is incremental and linear in its input: a chunk without a terminator
is kept as one more piece of the partial record, and the pieces are joined once,
when the chunk that ends the record comes (never per chunk). A record
longer than `max_record_bytes` is not kept: its bytes are skipped up to its end
and it is counted in `dropped`, so one endless line costs bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

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
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            self._add(chunk)
            return []
        # bytes.splitlines ends lines at \n, \r and \r\n only: Hadoop's terminators.
        data = b"".join((*self._pieces, chunk)) if self._pieces else chunk
        records = data.splitlines()
        ended = data.endswith((b"\n", b"\r"))
        tail = b"" if ended else records.pop()
        self._skip_lf = data.endswith(b"\r")
        if self._discarding:
            self.dropped += 1
            del records[0]
        self._pieces, self._size, self._discarding = [], 0, False
        limit = self.max_record_bytes
        if limit is not None and any(len(r) > limit for r in records):
            kept = [r for r in records if len(r) <= limit]
            self.dropped += len(records) - len(kept)
            records = kept
        self._add(tail)
        return records

    def finish(self) -> list[bytes]:
        """The record after the last terminator, if any bytes follow it."""
        records: list[bytes] = []
        if self._discarding:
            self.dropped += 1
        elif self._size:
            records.append(b"".join(self._pieces))
        self._pieces, self._size, self._discarding = [], 0, False
        self._skip_lf = False
        return records

    def _add(self, piece: bytes) -> None:
        """Keep part of the record being read, or skip it once the record is too long."""
        if not piece or self._discarding:
            return
        self._size += len(piece)
        if self.max_record_bytes is not None and self._size > self.max_record_bytes:
            self._pieces, self._size, self._discarding = [], 0, True
            return
        self._pieces.append(piece)


def split_records(chunks: Iterable[bytes], max_record_bytes: int | None = None) -> Iterator[bytes]:
    """Every record of the concatenated `chunks` (a convenience over LineSplitter)."""
    splitter = LineSplitter(max_record_bytes)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()
