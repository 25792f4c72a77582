"""Checkpoint files: written atomically, authenticated, the last K kept, bad ones skipped.

Checkpoints and write-ahead log records are pickles, and a pickle can run code:
whoever can write the job's volume could otherwise make the driver run anything
on restart. So a file is `MAGIC key-id tag \\n pickle`, where the tag is an
HMAC-SHA256 of the pickle under the job's state key (`state_key`), and a file
whose tag does not verify is refused before a byte of it is unpickled. The key id
(an HMAC of a constant, which says nothing of the key) tells "written under
another key" from "altered". A file is written to a hidden temporary file,
fsynced, renamed into place and the directory fsynced, so a crash leaves either
the old file or the new one. A reader that finds a truncated, altered or foreign
newest file logs its path and falls back to the previous one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import pickle
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubestream import settings

log = logging.getLogger(__name__)

MAGIC = b"KSCKPT2 "
_OLD_MAGIC = b"KSCKPT1 "
_PURPOSE = b"kubestream checkpoints and write-ahead log v2"
LOCAL_KEY_FILE = Path("~/.config/kubestream/state-key")


def derive_state_key(curve_secret: str) -> bytes:
    """The state key of a job whose CURVE secret key (Z85) this is."""
    return hmac.new(curve_secret.encode(), _PURPOSE, hashlib.sha256).digest()


def resolve_state_key(environ: Mapping[str, str], key_file: Path = LOCAL_KEY_FILE) -> bytes:
    """KUBESTREAM_STATE_KEY when set (`kubestream run` hands its executors the driver's);
    else derived from the job's CURVE secret (pods: from the job's Secret, never on the
    volume); else a key kept for this user outside any checkpoint (made on first use)."""
    explicit = environ.get(settings.STATE_KEY.env)
    if explicit:
        return bytes.fromhex(explicit)
    curve_secret = environ.get(settings.CURVE_SECRET_KEY.env)
    if curve_secret:
        return derive_state_key(curve_secret)
    path = key_file.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


@functools.cache
def state_key() -> bytes:
    """This process's state key (resolve_state_key over its environment), resolved once."""
    return resolve_state_key(os.environ)


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, b"key id", hashlib.sha256).hexdigest()[:16].encode("ascii")


def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, payload: Any, key: bytes | None = None) -> None:
    """Pickle `payload` to `path`, tagged under `key` (default: this process's state key)."""
    key = state_key() if key is None else key
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    directory = os.path.dirname(path)
    fd, staging = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _key_id(key) + b" " + _tag(key, body) + b"\n" + body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(staging, path)
    except BaseException:
        if os.path.exists(staging):
            os.unlink(staging)
        raise
    _fsync_directory(directory)


class CorruptCheckpointError(ValueError):
    """A checkpoint file that is truncated, altered or written under another key."""


def read_verified(path: str, key: bytes | None = None) -> Any:
    """The payload of `path`, unpickled only after its tag verified under `key` (default:
    this process's state key); raises CorruptCheckpointError saying why it was refused."""
    key = state_key() if key is None else key
    with open(path, "rb") as f:
        data = f.read()
    header, newline, body = data.partition(b"\n")
    if header.startswith(_OLD_MAGIC):
        raise CorruptCheckpointError(
            f"{path}: written by a kubestream that did not authenticate checkpoints, so it "
            "cannot be trusted; start fresh with an empty checkpoint directory"
        )
    key_id, _, tag = header[len(MAGIC) :].partition(b" ")
    if not newline or not header.startswith(MAGIC) or not tag:
        raise CorruptCheckpointError(f"{path}: not a kubestream checkpoint, or truncated")
    if not hmac.compare_digest(key_id, _key_id(key)):
        raise CorruptCheckpointError(
            f"{path}: written under another key than this job's (its Secret or "
            f"{settings.STATE_KEY.env} changed); to start fresh, use an empty checkpoint "
            "directory"
        )
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise CorruptCheckpointError(f"{path}: its tag does not verify (truncated or altered)")
    return pickle.loads(body)


class CheckpointStore:
    """Files named PREFIX-<batch time>.<phase> in one directory; newest = highest (time, phase)."""

    def __init__(self, directory: str, keep: int = 10, key: bytes | None = None) -> None:
        if keep < 2:
            raise ValueError("keep at least 2 checkpoints, so a corrupt one has a predecessor")
        self.directory = directory
        self.keep = keep
        self._key = state_key() if key is None else key
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

    def path(self, prefix: str, batch_time: int, phase: int) -> str:
        """The file a checkpoint of this batch time and phase is written to."""
        return os.path.join(self.directory, f"{prefix}-{batch_time}.{phase}")

    def write(self, prefix: str, batch_time: int, phase: int, payload: Any) -> str:
        path = self.path(prefix, batch_time, phase)
        write_atomically(path, payload, self._key)
        for _, _, old in self._names(prefix)[: -self.keep]:
            os.unlink(os.path.join(self.directory, old))
        return path

    def read_newest(self, prefix: str) -> tuple[str, Any] | None:
        """The newest checkpoint that verifies, or None when there is none."""
        for _, _, name in reversed(self._names(prefix)):
            path = os.path.join(self.directory, name)
            try:
                return path, read_verified(path, self._key)
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
                return read_verified(path, self._key)
            except (CorruptCheckpointError, pickle.UnpicklingError, EOFError, OSError) as exc:
                log.error("checkpoint %s is unusable (%s)", path, exc)
        return None

    def times(self, prefix: str) -> list[int]:
        return sorted({t for t, _, _ in self._names(prefix)})

    def remove(self, prefix: str, batch_time: int) -> None:
        """Delete the checkpoints of this batch time, every phase."""
        for time, _, name in self._names(prefix):
            if time == batch_time:
                os.unlink(os.path.join(self.directory, name))

    def size(self, prefix: str, batch_time: int) -> int:
        """Bytes of the checkpoints of this batch time, every phase."""
        return sum(
            os.path.getsize(os.path.join(self.directory, name))
            for time, _, name in self._names(prefix)
            if time == batch_time
        )
