"""Completion by position: when an executor has read all of an offset range.

Counting records would stall: compaction leaves offsets without records, and
transaction markers and aborted records (skipped under read_committed) take
offsets that are never delivered. So a range is done when the consumer's
position (the next offset it would return) reaches `until_offset`, whether that
position came from a delivered record, from the client's position after
skipping markers, or from reaching the partition's end.
"""

from __future__ import annotations


class RangeProgress:
    """Tracks one range [from_offset, until_offset) as records and positions come in."""

    def __init__(self, from_offset: int, until_offset: int) -> None:
        if from_offset > until_offset:
            raise ValueError(f"from_offset {from_offset} > until_offset {until_offset}")
        self.until_offset = until_offset
        self.position = from_offset

    @property
    def done(self) -> bool:
        return self.position >= self.until_offset

    def accept(self, offset: int) -> bool:
        """Whether the record at `offset` belongs to the range and was not yet returned.

        Records past the range are refused (the range is then done); a record
        delivered again after a re-seek (below the position) is refused too.
        """
        if offset < self.position:
            return False
        if offset >= self.until_offset:
            self.position = self.until_offset
            return False
        self.position = offset + 1
        return True

    def advance(self, position: int) -> None:
        """The consumer reports it would next return `position` (never moves back)."""
        self.position = max(self.position, min(position, self.until_offset))
