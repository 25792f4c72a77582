"""Who may read and who may change a running job through its HTTP ports.

Spark's view and modify ACLs, as two permissions: reading (the driver's page and
status document, /metrics of the driver and of every executor) and changing
(draining an executor, anything else that changes the job). Each is open or needs
its bearer token. Both tokens are derived from the job's CURVE secret key, so
whoever holds the job's Secret (the operator, an administrator, every pod of the
job) can compute them and no second secret has to be made or stored; they change
only with the key pair. A third, optional token (a cluster's Prometheus) may read
/metrics only.

In the lowest layer, so the driver's UI server and an executor's metrics server
decide alike; the driver adds the browser's cookie login (kubestream.driver.api_auth).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

_CHANGE_PURPOSE = b"kubestream driver API v1"
_READ_PURPOSE = b"kubestream driver API read v1"


def api_token(secret_key: str) -> str:
    """The change token (drains) of the job whose CURVE secret key is ``secret_key``."""
    return hmac.new(secret_key.encode(), _CHANGE_PURPOSE, hashlib.sha256).hexdigest()


def read_token(secret_key: str) -> str:
    """The read token (page, status, metrics) of the job whose CURVE secret key this is."""
    return hmac.new(secret_key.encode(), _READ_PURPOSE, hashlib.sha256).hexdigest()


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


@dataclass(frozen=True)
class Access:
    """The tokens each permission needs; None leaves that permission open to anyone
    who reaches the port. ``scrape`` is a further token that reads /metrics only, and
    ``scrape_file`` one kept in a file (TokenFile)."""

    read: str | None
    change: str | None
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
    ) -> Access:
        return cls(
            None if read_open else read_token(secret_key),
            None if change_open else api_token(secret_key),
            scrape or None,
            TokenFile(scrape_file) if scrape_file else None,
        )

    def may_scrape(self, presented: str) -> bool:
        """Whether ``presented`` may read /metrics: the read token or a scrape token."""
        if matches(presented, self.read):
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


def matches(presented: str, token: str | None) -> bool:
    """Constant-time comparison; an open permission (None) matches anything."""
    if token is None:
        return True
    given = presented.encode("utf-8", "surrogateescape")
    return bool(given) and hmac.compare_digest(given, token.encode())
