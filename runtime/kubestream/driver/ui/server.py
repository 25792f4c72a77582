"""One HTTP port on the driver: the page (`/`), the status JSON (`/api/v1/status`), `/metrics`
(reading), an open `/healthz`, and `POST /api/v1/executors/<id>/decommission` (changing),
each permission open or behind its token (kubestream.driver.api_auth); HTTPS when given
a certificate.

A standard-library server on its own thread, so the UI adds no dependency and
a slow browser cannot hold up batches. It bounds what clients can hold: an idle
connection is closed and only so many are served at once, more are answered 503
(settings ui_idle_timeout, ui_max_connections), and every malformed request gets a 4xx
and every failure a 500 with a line through logging, never a raw traceback.
The page's HTML, JS and CSS are package data served as they are; the page draws
its plots itself (no CDN: clusters are often offline).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kubestream import settings
from kubestream.driver.api_auth import COOKIE, OPEN, Access, bearer, cookie_token
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
    """What the API may change, behind the change permission (kubestream.driver.api_auth)."""

    decommission: Callable[[str], None]


class UIServer:
    """Serves until close(); `status(limit)` returns the status document with `limit` batches.

    ``access`` says which permission needs which token; ``tls`` (a server-side context
    holding the certificate) makes the port speak HTTPS only.
    """

    def __init__(
        self,
        status: StatusSource,
        registry: CollectorRegistry,
        host: str = "0.0.0.0",
        port: int = 4040,
        actions: Actions | None = None,
        idle_timeout: float = settings.UI_IDLE_TIMEOUT.default,
        max_connections: int = settings.UI_MAX_CONNECTIONS.default,
        access: Access = OPEN,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        handler = _handler(status, registry, actions, idle_timeout, access, tls is not None)
        self._server = _bind(host, port, handler, max_connections)
        if tls is not None:
            # The handshake runs on the connection's own thread, at its first read, so a
            # client that never finishes it cannot hold up accepting others.
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls is not None else "http"
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
        return f"{self.scheme}://{shown}:{self.port}/"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once; errors go to logging."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
    ) -> None:
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("UI: %d connections open; refused %s", self.max_connections, client_address)
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        failure = sys.exc_info()[1]
        if isinstance(failure, ssl.SSLError):  # plain HTTP, or a client refusing our certificate
            log.warning("UI: no TLS session with %s: %s", client_address, failure.reason)
            return
        log.exception("UI: a request from %s failed", client_address)


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 35\r\nConnection: close\r\n\r\n"
    b'{"error": "too many open requests"}'
)


def _bind(
    host: str, port: int, handler: type[BaseHTTPRequestHandler], max_connections: int
) -> ThreadingHTTPServer:
    attempts = 1 if port == 0 else PORT_ATTEMPTS
    for candidate in range(port, port + attempts):
        try:
            server = _BoundedServer((host, candidate), handler, max_connections)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or candidate == port + attempts - 1:
                raise OSError(exc.errno, f"UI port {candidate} on {host}: {exc.strerror}") from None
            log.warning("UI port %d is in use; trying %d", candidate, candidate + 1)
            continue
        return server
    raise AssertionError("unreachable")


def _server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{settings.UI_TLS_CERT.option}/{settings.UI_TLS_KEY.option}: cannot load the "
            f"certificate {cert_file!r} with the key {key_file!r}: {exc}"
        ) from None
    return context


class CertificateFiles:
    """The server context of a certificate and key on disk, made anew when the files
    change: a renewed certificate reaches a running driver (the kubelet swaps a Secret
    volume's files in place, both at once). Checked at each TLS handshake (two stat
    calls); a pair that does not load is logged and the previous one kept."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self._files = (cert_file, key_file)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._context = _server_context(cert_file, key_file)

    def _stat(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            found = [os.stat(f) for f in self._files]
        except OSError:
            return None
        return tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in found)

    def current(self) -> ssl.SSLContext:
        stamp = self._stat()
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp  # a pair that fails is tried again once it changes
                try:
                    self._context = _server_context(*self._files)
                except ConfigError as exc:
                    log.warning("UI: kept the previous certificate: %s", exc)
                else:
                    log.info("UI: serving the certificate in %s as it now is", self._files[0])
            return self._context


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for the PEM certificate chain and key, reloaded when the files
    change (CertificateFiles); ConfigError names the files if they do not load now."""
    files = CertificateFiles(cert_file, key_file)
    context = _server_context(cert_file, key_file)

    def use_current(connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        # Called at every ClientHello, with or without SNI: a new context for this
        # connection swaps in the certificate it holds.
        connection.context = files.current()

    context.sni_callback = use_current
    return context


_READ_REFUSED = (
    "reading this job needs its read token: send 'Authorization: Bearer <token>', or open "
    "/?token=<token> once in a browser (the token is the ui-read-token key of the job's "
    "Secret, <job>-curve)"
)
_CHANGE_REFUSED = (
    "changing this job needs its change token: send 'Authorization: Bearer <token>'; the "
    "token is derived from the job's CURVE secret key (kubestream decommission computes it)"
)


def _handler(
    status: StatusSource,
    registry: CollectorRegistry,
    actions: Actions | None,
    idle_timeout: float,
    access: Access,
    secure: bool,
) -> type[BaseHTTPRequestHandler]:
    assets = {
        path: ((files(__package__) / name).read_bytes(), kind)
        for path, (name, kind) in _ASSETS.items()
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "kubestream"
        timeout = idle_timeout

        def do_GET(self) -> None:
            self._guarded(self._get)

        def do_POST(self) -> None:
            self._guarded(self._post)

        def _guarded(self, serve: Callable[[], None]) -> None:
            """Any failure is a 500 and a log line, never a dropped connection."""
            try:
                serve()
            except Exception:
                log.exception("UI: %s %s failed", self.command, urlsplit(self.path).path[:200])
                with contextlib.suppress(OSError):
                    self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "the driver failed to answer")

        def _may_read(self, path: str) -> bool:
            presented = bearer(self.headers.get("Authorization")) or cookie_token(
                self.headers.get("Cookie")
            )
            if path == "/metrics":
                return access.may_scrape(presented)
            return access.may_read(presented)

        def _get(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/healthz":  # the readiness probe's: open, and says nothing
                self._reply(HTTPStatus.OK, b"ok", "text/plain; charset=utf-8")
                return
            if url.path == "/" and "token" in query:
                self._log_in(query["token"][-1])
                return
            if not self._may_read(url.path):
                log.warning("UI: refused to show %s to %s", url.path, self.address_string())
                self._error(HTTPStatus.UNAUTHORIZED, _READ_REFUSED)
                return
            if url.path in assets:
                body, kind = assets[url.path]
                self._reply(HTTPStatus.OK, body, kind)
            elif url.path == "/api/v1/status":
                self._status(query)
            elif url.path == "/metrics":
                self._reply(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no page at {url.path}")

        def _post(self) -> None:
            match = DECOMMISSION.match(urlsplit(self.path).path)
            if match is None:
                self._error(HTTPStatus.NOT_FOUND, f"nothing to change at {self.path[:200]}")
                return
            if actions is None:
                self._error(HTTPStatus.FORBIDDEN, "this driver's API is read-only")
                return
            # The header only, never the cookie: another site's page cannot make a browser
            # that holds the cookie change the job.
            if not access.may_change(bearer(self.headers.get("Authorization"))):
                log.warning("refused an unauthenticated request from %s", self.address_string())
                self._error(HTTPStatus.UNAUTHORIZED, _CHANGE_REFUSED)
                return
            executor_id = unquote(match.group(1))
            try:
                actions.decommission(executor_id)
            except ConfigError as exc:
                self._error(HTTPStatus.CONFLICT, str(exc))
                return
            body = json.dumps({"executor": executor_id, "state": "draining"}).encode()
            self._reply(HTTPStatus.ACCEPTED, body, "application/json")

        def _log_in(self, token: str) -> None:
            """``/?token=``: the read token as a cookie, then the page without it in the URL."""
            if access.read_open or not access.may_read(token):
                log.warning("UI: refused a wrong token from %s", self.address_string())
                self._error(HTTPStatus.UNAUTHORIZED, _READ_REFUSED)
                return
            self.send_response(HTTPStatus.SEE_OTHER)
            flags = "; Secure" if secure else ""
            self.send_header(
                "Set-Cookie", f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{flags}"
            )
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

        def _status(self, query: dict[str, list[str]]) -> None:
            text = query.get("batches", ["100"])[-1]
            if (
                not (text.isascii() and text.isdigit() and len(text) <= 4)
                or int(text) > MAX_BATCHES
            ):
                self._error(
                    HTTPStatus.BAD_REQUEST,
                    f"batches must be 0 to {MAX_BATCHES}, got {text[:20]!r}",
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
            # The request line of /?token= holds the read token: never logged.
            log.debug("%s %s", self.address_string(), urlsplit(self.path).path[:200])

    return Handler
