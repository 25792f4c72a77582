"""Checkpoint files: written atomically, checksummed, the last K kept, corrupt ones skipped.

A file is `MAGIC sha256-hex \\n pickle`. It is written to a hidden temporary
file, fsynced, renamed into place and the directory fsynced, so a crash leaves
either the old file or the new one. A reader that finds a truncated or altered
newest file logs its path and falls back to the previous one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from typing import Any

log = logging.getLogger(__name__)

MAGIC = b"KSCKPT1 "


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, payload: Any) -> None:
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    directory = os.path.dirname(path)
    fd, staging = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
    _fsync_directory(directory)


class CorruptCheckpointError(ValueError):
    """A checkpoint file whose checksum or framing does not hold."""


def read_verified(path: str) -> Any:
    with open(path, "rb") as f:
        data = f.read()
    header, newline, body = data.partition(b"\n")
    if not newline or not header.startswith(MAGIC):
        raise CorruptCheckpointError(f"{path}: not a kubestream checkpoint or truncated")
    if hashlib.sha256(body).hexdigest().encode("ascii") != header[len(MAGIC) :]:
        raise CorruptCheckpointError(f"{path}: checksum mismatch (truncated or altered)")
    return pickle.loads(body)


class CheckpointStore:
    """Files named PREFIX-<batch time>.<phase> in one directory; newest = highest (time, phase)."""

    def __init__(self, directory: str, keep: int = 10) -> None:
        if keep < 2:
            raise ValueError("keep at least 2 checkpoints, so a corrupt one has a predecessor")
        self.directory = directory
        self.keep = keep
        os.makedirs(directory, exist_ok=True)

    def _names(self, prefix: str) -> list[tuple[int, int, str]]:
        found = []
        for name in os.listdir(self.directory):
            if not name.startswith(prefix + "-"):
                continue
            stem = name[len(prefix) + 1 :]
            time_text, _, phase_text = stem.partition(".")
            if time_text.isdigit() and phase_text.isdigit():
                found.append((int(time_text), int(phase_text), name))
        return sorted(found)

    def write(self, prefix: str, batch_time: int, phase: int, payload: Any) -> str:
        path = os.path.join(self.directory, f"{prefix}-{batch_time}.{phase}")
        write_atomically(path, payload)
        for _, _, old in self._names(prefix)[: -self.keep]:
            os.unlink(os.path.join(self.directory, old))
        return path

    def read_newest(self, prefix: str) -> tuple[str, Any] | None:
        """The newest checkpoint that verifies, or None when there is none."""
        for _, _, name in reversed(self._names(prefix)):
            path = os.path.join(self.directory, name)
            try:
                return path, read_verified(path)
            except (CorruptCheckpointError, pickle.UnpicklingError, EOFError, OSError) as exc:
                log.error("checkpoint %s is unusable (%s); trying the previous one", path, exc)
        return None

    def read(self, prefix: str, batch_time: int) -> Any | None:
        """The newest verified checkpoint of exactly this batch time, any phase."""
        for time, _, name in reversed(self._names(prefix)):
            if time != batch_time:
                continue
            path = os.path.join(self.directory, name)
            try:
                return read_verified(path)
            except (CorruptCheckpointError, pickle.UnpicklingError, EOFError, OSError) as exc:
                log.error("checkpoint %s is unusable (%s)", path, exc)
        return None

    def times(self, prefix: str) -> list[int]:
        return sorted({t for t, _, _ in self._names(prefix)})
