"""Who may read and who may change a running job through the driver's HTTP port.

Spark's view and modify ACLs, as two permissions: reading (the page, the status
document, /metrics) and changing (draining an executor, anything else that
changes the job). Each is open or needs its bearer token. Both tokens are
derived from the job's CURVE secret key, so whoever holds the job's Secret (the
operator, an administrator) can compute them and no second secret has to be
made, stored or rotated (the operator also writes the read token into the Secret,
as ``ui-read-token``, for people to copy). A third, optional token (a cluster's
Prometheus) may read /metrics only.

A browser behind ``kubectl port-forward`` opens ``/?token=<read token>`` once;
the answer sets the token as an HttpOnly cookie and redirects to ``/``, as
Jupyter does. The cookie only ever reads: a change needs the header, so a page
on another site cannot make a browser drain an executor.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

_CHANGE_PURPOSE = b"kubestream driver API v1"
_READ_PURPOSE = b"kubestream driver API read v1"
COOKIE = "kubestream_token"


def api_token(secret_key: str) -> str:
    """The change token (drains) of the job whose CURVE secret key is ``secret_key``."""
    return hmac.new(secret_key.encode(), _CHANGE_PURPOSE, hashlib.sha256).hexdigest()


def read_token(secret_key: str) -> str:
    """The read token (page, status, metrics) of the job whose CURVE secret key this is."""
    return hmac.new(secret_key.encode(), _READ_PURPOSE, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Access:
    """The tokens each permission needs; None leaves that permission open to anyone
    who reaches the port. ``scrape`` is a further token that reads /metrics only."""

    read: str | None
    change: str | None
    scrape: str | None = None

    @classmethod
    def of_job(
        cls, secret_key: str, read_open: bool, change_open: bool, scrape: str | None = None
    ) -> Access:
        return cls(
            None if read_open else read_token(secret_key),
            None if change_open else api_token(secret_key),
            scrape or None,
        )


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, "" if none."""
    scheme, _, given = (authorization or "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def cookie_token(header: str | None) -> str:
    """The token in a ``Cookie`` header's kubestream_token, "" if none or malformed."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else ""


def matches(presented: str, token: str | None) -> bool:
    """Constant-time comparison; an open permission (None) matches anything."""
    if token is None:
        return True
    given = presented.encode("utf-8", "surrogateescape")
    return bool(given) and hmac.compare_digest(given, token.encode())


def is_authorised(authorization: str | None, token: str) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    return matches(bearer(authorization), token)
