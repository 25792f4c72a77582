"""Checkpoint files: atomic, checksummed, pruned, and skipped when corrupt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kubestream.storage.checkpoint_store import (
    CheckpointStore,
    CorruptCheckpointError,
    read_verified,
)


def test_newest_checkpoint_wins_and_only_the_last_k_are_kept(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path), keep=3)
    for t in range(1, 6):
        store.write("metadata", t * 1000, 1, {"t": t})
    assert store.times("metadata") == [3000, 4000, 5000]
    found = store.read_newest("metadata")
    assert found is not None and found[1] == {"t": 5}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_newest_checkpoint_falls_back_and_names_the_file(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = CheckpointStore(str(tmp_path), keep=3)
    store.write("metadata", 1000, 1, {"t": 1, "pad": "x" * 200})
    newest = Path(store.write("metadata", 2000, 1, {"t": 2, "pad": "x" * 200}))
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    else:
        newest.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError):
        read_verified(str(newest))
    with caplog.at_level(logging.ERROR):
        found = store.read_newest("metadata")
    assert found is not None and found[1]["t"] == 1
    assert str(newest) in caplog.text
