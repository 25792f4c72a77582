"""Checkpoints and write-ahead log records are refused before unpickling unless their HMAC
verifies under the job's state key."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream import settings as ks_settings
from kubestream.storage.checkpoint_store import (
    CheckpointStore,
    CorruptCheckpointError,
    derive_state_key,
    read_verified,
    resolve_state_key,
    write_atomically,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


class Marker:
    """Unpickling this creates a file: proof that a refused file was unpickled after all."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (os.system, (f"touch {self.path}",))


def _two_checkpoints(tmp_path: Path) -> tuple[CheckpointStore, Path]:
    store = CheckpointStore(str(tmp_path / "ckpt"), keep=3, key=KEY)
    store.write("metadata", 1000, 1, {"t": 1})
    newest = Path(store.write("metadata", 2000, 1, {"t": 2}))
    return store, newest


def _forge(newest: Path, marker: Path, how: str) -> None:
    body = pickle.dumps(Marker(marker))
    header = newest.read_bytes().partition(b"\n")[0]
    if how == "old-checksum-format":
        forged = b"KSCKPT1 " + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    elif how == "right-key-id-wrong-tag":
        forged = header + b"\n" + body
    else:
        write_atomically(str(newest), Marker(marker), key=OTHER_KEY)
        return
    newest.write_bytes(forged)


@pytest.mark.parametrize("how", ["old-checksum-format", "right-key-id-wrong-tag", "other-key"])
def test_a_forged_pickle_is_refused_before_unpickling_and_the_previous_one_used(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    store, newest = _two_checkpoints(tmp_path)
    marker = tmp_path / "unpickled"
    _forge(newest, marker, how)
    with caplog.at_level(logging.ERROR):
        found = store.read_newest("metadata")
    assert not marker.exists(), "a refused checkpoint was unpickled"
    assert found is not None and found[1] == {"t": 1}
    assert str(newest) in caplog.text


@settings(max_examples=40, deadline=None)
@given(offset=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(
    tmp_path_factory: pytest.TempPathFactory, offset: int, bit: int
) -> None:
    path = tmp_path_factory.mktemp("flip") / "record"
    write_atomically(str(path), {"records": list(range(50))}, key=KEY)
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError):
        read_verified(str(path), key=KEY)


def test_a_checkpoint_under_another_key_says_so_and_how_to_start_fresh(tmp_path: Path) -> None:
    path = tmp_path / "metadata-1000.1"
    write_atomically(str(path), {"t": 1}, key=KEY)
    with pytest.raises(CorruptCheckpointError, match=r"another key.*empty checkpoint directory"):
        read_verified(str(path), key=OTHER_KEY)
    assert read_verified(str(path), key=KEY) == {"t": 1}


def test_the_state_key_comes_from_the_explicit_key_then_the_job_secret_then_a_user_file(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "config" / "state-key"
    explicit = {ks_settings.STATE_KEY.env: KEY.hex(), ks_settings.CURVE_SECRET_KEY.env: "s" * 40}
    assert resolve_state_key(explicit, key_file) == KEY
    job = {ks_settings.CURVE_SECRET_KEY.env: "s" * 40}
    assert resolve_state_key(job, key_file) == derive_state_key("s" * 40) != KEY
    assert not key_file.exists()
    local = resolve_state_key({}, key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert resolve_state_key({}, key_file) == local
    assert len(local) == 32
