"""Who may change a running job through the driver's HTTP API.

Reading (the page, status, metrics) is open, as Spark's UI is; changing (draining
an executor) needs a bearer token derived from the job's CURVE secret key. Whoever
holds the job's Secret (the operator, an administrator) can compute it, so no
second secret has to be made, stored or rotated.
"""

from __future__ import annotations

import hashlib
import hmac

_PURPOSE = b"kubestream driver API v1"


def api_token(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def is_authorised(authorization: str | None, token: str) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    scheme, _, given = (authorization or "").partition(" ")
    presented = given.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented, token.encode())
