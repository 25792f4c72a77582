"""One HTTP port on the driver: the page (`/`), the status JSON (`/api/v1/status`), `/metrics`.

A standard-library server on its own thread, so the UI adds no dependency and
a slow browser cannot hold up batches. The page's HTML, JS and CSS are package
data served as they are; the page draws its plots itself (no CDN: clusters are
often offline).
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

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


class UIServer:
    """Serves until close(); `status(limit)` returns the status document with `limit` batches."""

    def __init__(
        self,
        status: StatusSource,
        registry: CollectorRegistry,
        host: str = "0.0.0.0",
        port: int = 4040,
    ) -> None:
        handler = _handler(status, registry)
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


def _handler(status: StatusSource, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
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
