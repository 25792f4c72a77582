"""Who may read and who may change a running job through its HTTP ports.

Spark's view and modify ACLs, as two permissions: reading (the driver's page and
status document, /metrics of the driver and of every executor) and changing
(draining an executor, anything else that changes the job). Each is open or needs
its bearer token. Both tokens are derived from the job's CURVE secret key and a
token generation (a non-secret integer, 0 for a job never rotated), so whoever
holds the job's Secret (the operator, an administrator, every pod of the job) can
compute them and no second secret has to be made or stored. Raising the
generation rotates them without touching the key pair, so ZeroMQ and the
checkpoint key (derived from the secret key alone) are unaffected; pods read the
generation from a file (GenerationFile) and take a new one at the next request.
A third, optional token (a cluster's Prometheus) may read /metrics only.

In the lowest layer, so the driver's UI server and an executor's metrics server
decide alike; the driver adds the browser's cookie login (kubestream.driver.api_auth).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CHANGE_PURPOSE = b"kubestream driver API v1"
_READ_PURPOSE = b"kubestream driver API read v1"


def _derive(secret_key: str, purpose: bytes, generation: int) -> str:
    if generation < 0:
        raise ValueError(f"a token generation is a non-negative integer, not {generation}")
    # Generation 0 is the derivation from before generations: upgrading changes no token.
    message = purpose if generation == 0 else purpose + b" generation %d" % generation
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def api_token(secret_key: str, generation: int = 0) -> str:
    """The change token (drains) of the job whose CURVE secret key is ``secret_key``, at
    token ``generation`` (>= 0; ValueError otherwise): 64 hex digits."""
    return _derive(secret_key, _CHANGE_PURPOSE, generation)


def read_token(secret_key: str, generation: int = 0) -> str:
    """The read token (page, status, metrics) of the job whose CURVE secret key this is,
    at token ``generation`` (>= 0; ValueError otherwise): 64 hex digits."""
    return _derive(secret_key, _READ_PURPOSE, generation)


def parse_generation(text: str | None) -> int | None:
    """A token generation as kept in the job's Secret and its mounted file: a decimal
    non-negative integer; missing or empty is 0 (a job never rotated); None if malformed."""
    value = (text or "").strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


class TokenFile:
    """A token kept in a file, read again when the file changes: a Secret's key mounted
    as a volume, which the kubelet swaps in place when the Secret changes, so a rotated
    token is taken without a restart. A missing or empty file holds no token."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._token: str | None = None

    def current(self) -> str | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    with open(self.path, encoding="utf-8") as f:
                        self._token = f.read().strip() or None
                except (OSError, UnicodeDecodeError) as exc:
                    log.warning("token file %s unreadable: %s", self.path, type(exc).__name__)
                    self._token = None
            return self._token


class GenerationFile:
    """The job's token generation, kept in a file (a mounted key of the job's Secret) and
    read again when it changes. A missing or empty file is generation 0; a malformed one
    is no generation at all (None): the read and change tokens then match nothing until
    the file is put right, rather than falling back to older, rotated-away tokens."""

    def __init__(self, path: str) -> None:
        self._file = TokenFile(path)
        self._lock = threading.Lock()
        self._text: str | None = None
        self._generation: int | None = 0

    @property
    def path(self) -> str:
        return self._file.path

    def current(self) -> int | None:
        text = self._file.current()
        with self._lock:
            if text != self._text:
                self._text = text
                self._generation = parse_generation(text)
                if self._generation is None:
                    log.warning(
                        "token generation file %s does not hold a non-negative integer: "
                        "the read and change tokens are refused until it does",
                        self.path,
                    )
            return self._generation


class JobTokens:
    """The read and change tokens of one job at the generation its file holds now (0
    without a file); None when the file is malformed, which no token matches."""

    def __init__(self, secret_key: str, generation: GenerationFile | None = None) -> None:
        self._secret_key = secret_key
        self._generation = generation

    def generation(self) -> int | None:
        return 0 if self._generation is None else self._generation.current()

    def read(self) -> str | None:
        generation = self.generation()
        return None if generation is None else read_token(self._secret_key, generation)

    def change(self) -> str | None:
        generation = self.generation()
        return None if generation is None else api_token(self._secret_key, generation)


Token = str | Callable[[], str | None] | None
"""A permission's token: fixed, computed at each request (JobTokens's, which follow the
generation file), or None for a permission open to anyone who reaches the port."""


@dataclass(frozen=True)
class Access:
    """The tokens each permission needs; None leaves that permission open to anyone
    who reaches the port. ``scrape`` is a further token that reads /metrics only, and
    ``scrape_file`` one kept in a file (TokenFile)."""

    read: Token
    change: Token
    scrape: str | None = None
    scrape_file: TokenFile | None = None

    @classmethod
    def of_job(
        cls,
        secret_key: str,
        read_open: bool,
        change_open: bool,
        scrape: str | None = None,
        scrape_file: str | None = None,
        generation_file: str | None = None,
    ) -> Access:
        """A job's permissions; its read and change tokens follow the token generation in
        ``generation_file`` (generation 0 without one)."""
        tokens = JobTokens(secret_key, GenerationFile(generation_file) if generation_file else None)
        return cls(
            None if read_open else tokens.read,
            None if change_open else tokens.change,
            scrape or None,
            TokenFile(scrape_file) if scrape_file else None,
        )

    @property
    def read_open(self) -> bool:
        return self.read is None

    def may_read(self, presented: str) -> bool:
        """Whether ``presented`` may read the page and the status document."""
        return _may(presented, self.read)

    def may_change(self, presented: str) -> bool:
        """Whether ``presented`` may change the job (drain an executor)."""
        return _may(presented, self.change)

    def may_scrape(self, presented: str) -> bool:
        """Whether ``presented`` may read /metrics: the read token or a scrape token."""
        if self.may_read(presented):
            return True
        if self.scrape is not None and matches(presented, self.scrape):
            return True
        from_file = self.scrape_file.current() if self.scrape_file is not None else None
        return from_file is not None and matches(presented, from_file)


OPEN = Access(read=None, change=None)


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, "" if none."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def _may(presented: str, token: Token) -> bool:
    if token is None:
        return True
    current = token() if callable(token) else token
    return current is not None and matches(presented, current)


def matches(presented: str, token: str | None) -> bool:
    """Constant-time comparison; an open permission (None) matches anything."""
    if token is None:
        return True
    given = presented.encode("utf-8", "surrogateescape")
    return bool(given) and hmac.compare_digest(given, token.encode())
