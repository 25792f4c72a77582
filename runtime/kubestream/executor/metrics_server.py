"""An executor's HTTP port: ``/metrics`` behind the job's read permission, as the
driver's (kubestream.access: the read token or the scrape token, unless reading is
open), and an open ``/healthz`` for the readiness probe.

A standard-library server on its own thread; it answers nothing else and never
logs a request line (a header may hold a token).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubestream.access import OPEN, Access, bearer

log = logging.getLogger(__name__)

_REFUSED = json.dumps(
    {
        "error": "reading this executor's metrics needs the job's read token (the "
        "ui-read-token key of the job's Secret) or the scrape token: send "
        "'Authorization: Bearer <token>'"
    }
).encode()


class MetricsServer:
    """Serves ``registry`` on ``host:port`` (0: any free port) until close()."""

    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, access: Access = OPEN
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(registry, access))
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = Thread(
            target=self._server.serve_forever, args=(0.05,), name="metrics-server", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(registry: CollectorRegistry, access: Access) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kubestream"
        timeout = 30

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/healthz":
                self._reply(HTTPStatus.OK, b"ok", "text/plain; charset=utf-8")
            elif path != "/metrics":
                self._reply(HTTPStatus.NOT_FOUND, b'{"error": "no page here"}', "application/json")
            elif not access.may_scrape(bearer(self.headers.get("Authorization"))):
                log.warning("refused to show /metrics to %s", self.address_string())
                self._reply(HTTPStatus.UNAUTHORIZED, _REFUSED, "application/json")
            else:
                self._reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)

        def _reply(self, code: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), urlsplit(self.path).path[:200])

    return Handler
