"""In-memory block store of one executor: received input, shuffle output, and later state.

Blocks are kept serialised, so serving a peer costs no pickling and memory use is
the sum of their sizes.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterable
from typing import Any


def serialise(records: list[Any]) -> bytes:
    return pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL)


def deserialise(blob: bytes) -> list[Any]:
    records: list[Any] = pickle.loads(blob)
    return records


class BlockManager:
    def __init__(self) -> None:
        self._blocks: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, block_id: str, blob: bytes) -> None:
        with self._lock:
            self._blocks[block_id] = blob

    def get(self, block_id: str) -> bytes | None:
        with self._lock:
            return self._blocks.get(block_id)

    def remove(self, block_ids: Iterable[str]) -> None:
        with self._lock:
            for block_id in block_ids:
                self._blocks.pop(block_id, None)

    def remove_prefix(self, prefix: str) -> None:
        with self._lock:
            for block_id in [b for b in self._blocks if b.startswith(prefix)]:
                del self._blocks[block_id]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._blocks)

    def stats(self) -> tuple[int, int]:
        """(number of blocks, bytes held)."""
        with self._lock:
            return len(self._blocks), sum(len(b) for b in self._blocks.values())


def shuffle_block_id(shuffle_id: int, map_index: int, reduce_index: int) -> str:
    return f"shuffle_{shuffle_id}_{map_index}_{reduce_index}"


def shuffle_prefix(shuffle_id: int) -> str:
    return f"shuffle_{shuffle_id}_"


def shuffle_map_output(block_id: str) -> tuple[int, int] | None:
    """(shuffle id, map index) of a shuffle block; None for any other block."""
    parts = block_id.split("_")
    if len(parts) != 4 or parts[0] != "shuffle":
        return None
    return int(parts[1]), int(parts[2])
