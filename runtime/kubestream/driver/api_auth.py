"""The driver's side of who may read and change a job (kubestream.access): the tokens,
and a browser's login.

A browser behind ``kubectl port-forward`` opens ``/?token=<read token>`` once;
the answer sets the token as an HttpOnly cookie and redirects to ``/``, as
Jupyter does. The cookie only ever reads: a change needs the header, so a page
on another site cannot make a browser drain an executor. The operator also writes
the read token into the job's Secret, as ``ui-read-token``, for people to copy, and
keeps it in step with the token generation (``ui-token-generation``) it rotates.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from kubestream.access import (
    OPEN,
    Access,
    GenerationFile,
    JobTokens,
    api_token,
    bearer,
    matches,
    parse_generation,
    read_token,
)

__all__ = [
    "COOKIE",
    "OPEN",
    "Access",
    "GenerationFile",
    "JobTokens",
    "api_token",
    "bearer",
    "cookie_token",
    "matches",
    "parse_generation",
    "read_token",
]

COOKIE = "kubestream_token"


def cookie_token(header: str | None) -> str:
    """The token in a ``Cookie`` header's kubestream_token, "" if none or malformed."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        return ""
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else ""
