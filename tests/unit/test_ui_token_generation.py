"""The read and change tokens derive from the job's CURVE secret and a token generation;
the checkpoint key from the secret alone. Pure: plain-Python HMACs are the reference."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import settings
from kubestream.access import (
    GenerationFile,
    JobTokens,
    api_token,
    parse_generation,
    read_token,
)
from kubestream.storage.checkpoint_store import derive_state_key, resolve_state_key

pytestmark = pytest.mark.unit

secrets_ = st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s)
generations = st.integers(min_value=0, max_value=10**12)


def reference(secret: str, purpose: bytes) -> str:
    return hmac.new(secret.encode(), purpose, hashlib.sha256).hexdigest()


@given(secrets_)
def test_generation_0_gives_the_tokens_from_before_generations(secret: str) -> None:
    """Upgrading the operator and runtime changes no job's tokens."""
    assert read_token(secret) == read_token(secret, 0)
    assert read_token(secret, 0) == reference(secret, b"kubestream driver API read v1")
    assert api_token(secret, 0) == reference(secret, b"kubestream driver API v1")


@given(secrets_, generations, generations)
def test_another_generation_gives_other_tokens(secret: str, one: int, other: int) -> None:
    tokens = {
        ("read", one): read_token(secret, one),
        ("change", one): api_token(secret, one),
        ("read", other): read_token(secret, other),
        ("change", other): api_token(secret, other),
    }
    assert len(set(tokens.values())) == len(tokens)  # distinct unless the same generation
    assert all(len(t) == 64 and int(t, 16) >= 0 for t in tokens.values())
    assert read_token(secret, one) == read_token(secret, one)  # and deterministic


@given(secrets_, generations)
def test_the_checkpoint_key_does_not_depend_on_the_generation(secret: str, generation: int) -> None:
    """Resolved as a pod resolves it, with the generation file in its environment."""
    environ = {
        settings.CURVE_SECRET_KEY.env: secret,
        settings.UI_TOKEN_GENERATION_FILE.env: f"/nonexistent/{generation}",
    }
    assert resolve_state_key(environ) == derive_state_key(secret)
    assert derive_state_key(secret) == hmac.digest(
        secret.encode(), b"kubestream checkpoints and write-ahead log v2", "sha256"
    )


def test_a_negative_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        read_token("s", -1)


@given(generations)
def test_a_generation_reads_back_from_its_text(generation: int) -> None:
    assert parse_generation(str(generation)) == generation
    assert parse_generation(f" {generation}\n") == generation


@pytest.mark.parametrize("text", ["-1", "1.5", "one", "0x10", "\u0661", "9" * 19])
def test_malformed_generations_are_none(text: str) -> None:
    assert parse_generation(text) is None


@pytest.mark.parametrize("text", [None, "", " \n"])
def test_no_generation_is_generation_0(text: str | None) -> None:
    assert parse_generation(text) == 0


def test_job_tokens_follow_the_generation_file(tmp_path: Path) -> None:
    path = tmp_path / "ui-token-generation"
    tokens = JobTokens("secret", GenerationFile(str(path)))
    assert (tokens.read(), tokens.change()) == (read_token("secret"), api_token("secret"))
    for text, generation in (("3\n", 3), ("1", 1)):
        staged = tmp_path / "staged"
        staged.write_text(text)
        os.replace(staged, path)
        assert tokens.read() == read_token("secret", generation)
        assert tokens.change() == api_token("secret", generation)
    path.write_text("three")
    assert tokens.read() is None and tokens.change() is None  # matched by nothing
    assert JobTokens("secret").read() == read_token("secret")  # no file: generation 0
