"""One HTTP port on the driver: the page (`/`), the status JSON (`/api/v1/status`), `/metrics`,
and, behind the job's token, `POST /api/v1/executors/<id>/decommission`.

A standard-library server on its own thread, so the UI adds no dependency and
a slow browser cannot hold up batches. The page's HTML, JS and CSS are package
data served as they are; the page draws its plots itself (no CDN: clusters are
often offline).
"""

from __future__ import annotations

import errno
import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubestream.driver.api_auth import is_authorised
from kubestream.errors import ConfigError

log = logging.getLogger(__name__)

# Spark's UI also tries the next ports when its own is taken.
PORT_ATTEMPTS = 16
MAX_BATCHES = 1000

_ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

StatusSource = Callable[[int], dict[str, Any]]
DECOMMISSION = re.compile(r"^/api/v1/executors/([^/]+)/decommission$")


@dataclass(frozen=True)
class Actions:
    """What the API may change, behind the job's token (see kubestream.driver.api_auth)."""

    token: str
    decommission: Callable[[str], None]


class UIServer:
    """Serves until close(); `status(limit)` returns the status document with `limit` batches."""

    def __init__(
        self,
        status: StatusSource,
        registry: CollectorRegistry,
        host: str = "0.0.0.0",
        port: int = 4040,
        actions: Actions | None = None,
    ) -> None:
        handler = _handler(status, registry, actions)
        self._server = _bind(host, port, handler)
        self.host = host
        self.port: int = self._server.server_address[1]
        # A short poll interval, so close() (on shutdown) does not wait half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="ui-server", daemon=True
        )
        self._thread.start()

    def url(self) -> str:
        """The page's address; on a wildcard address, this machine's (the pod's) name."""
        shown = socket.gethostname() if self.host in ("0.0.0.0", "", "::") else self.host
        return f"http://{shown}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _bind(host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    attempts = 1 if port == 0 else PORT_ATTEMPTS
    for candidate in range(port, port + attempts):
        try:
            server = ThreadingHTTPServer((host, candidate), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or candidate == port + attempts - 1:
                raise OSError(exc.errno, f"UI port {candidate} on {host}: {exc.strerror}") from None
            log.warning("UI port %d is in use; trying %d", candidate, candidate + 1)
            continue
        server.daemon_threads = True
        return server
    raise AssertionError("unreachable")


def _handler(
    status: StatusSource, registry: CollectorRegistry, actions: Actions | None
) -> type[BaseHTTPRequestHandler]:
    assets = {
        path: ((files(__package__) / name).read_bytes(), kind)
        for path, (name, kind) in _ASSETS.items()
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "kubestream"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path in assets:
                body, kind = assets[url.path]
                self._reply(HTTPStatus.OK, body, kind)
            elif url.path == "/api/v1/status":
                self._status(parse_qs(url.query))
            elif url.path == "/metrics":
                self._reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no page at {url.path}")

        def do_POST(self) -> None:
            match = DECOMMISSION.match(urlsplit(self.path).path)
            if match is None:
                self._error(HTTPStatus.NOT_FOUND, f"nothing to change at {self.path}")
                return
            if actions is None:
                self._error(HTTPStatus.FORBIDDEN, "this driver's API is read-only")
                return
            if not is_authorised(self.headers.get("Authorization"), actions.token):
                log.warning("refused an unauthenticated request from %s", self.address_string())
                self._error(
                    HTTPStatus.UNAUTHORIZED,
                    "send 'Authorization: Bearer <token>'; the token is derived from the "
                    "job's CURVE secret key (kubestream decommission computes it)",
                )
                return
            executor_id = unquote(match.group(1))
            try:
                actions.decommission(executor_id)
            except ConfigError as exc:
                self._error(HTTPStatus.CONFLICT, str(exc))
                return
            body = json.dumps({"executor": executor_id, "state": "draining"}).encode()
            self._reply(HTTPStatus.ACCEPTED, body, "application/json")

        def _status(self, query: dict[str, list[str]]) -> None:
            text = query.get("batches", ["100"])[-1]
            if not text.isdigit() or int(text) > MAX_BATCHES:
                self._error(
                    HTTPStatus.BAD_REQUEST, f"batches must be 0 to {MAX_BATCHES}, got {text!r}"
                )
                return
            body = json.dumps(status(int(text))).encode()
            self._reply(HTTPStatus.OK, body, "application/json")

        def _error(self, code: HTTPStatus, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._reply(code, body, "application/json")

        def _reply(self, code: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
