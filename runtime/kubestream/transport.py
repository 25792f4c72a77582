"""ZeroMQ transport, the only module that imports zmq.

Every socket is CURVE-encrypted. Servers (driver ROUTER, executor block server)
authenticate clients through ZAP against the job's public key, so a peer without
the job's key pair is refused during the handshake, before any message, and so
any pickle, reaches the application. Each endpoint owns one I/O thread; other
threads send by appending to an outbox and waking it through a pipe.

A message travels as frames of at most FRAME_BYTES (the receiver joins them), and
every socket refuses a larger frame, so a peer without keys that declares a huge
frame is disconnected after its header instead of being read into memory first.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)

_ZAP_DOMAIN = "kubestream"

FRAME_BYTES = 1 << 20
"""Largest frame any socket sends or accepts (1 MiB): longer messages are split, so the
limit costs legitimate traffic nothing and bounds what an unauthenticated peer can make a
process buffer before the CURVE handshake refuses it."""
_MAX_FRAME = FRAME_BYTES + 64
REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between refusal warnings; the ones in between are counted, not logged."""
_HANDSHAKE_FAILURES = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)


@dataclass(frozen=True)
class CurveKeys:
    """The job's CURVE key pair (Z85 text). The secret never appears in repr or logs."""

    public: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        for name, value in (("public", self.public), ("secret", self.secret)):
            if len(value) != 40:
                raise ValueError(f"CURVE {name} key must be 40 Z85 characters, got {len(value)}")


def generate_keypair() -> tuple[str, str]:
    """A fresh (public, secret) CURVE key pair as Z85 strings."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


class RateLimitedWarning:
    """A warning logged at most once per interval, with the count of those suppressed since:
    a flood of refused connections must not flood the log too."""

    def __init__(
        self, interval: float = REFUSAL_LOG_INTERVAL, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._now = now
        self._lock = threading.Lock()
        self._next = 0.0
        self._suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        with self._lock:
            now = self._now()
            if now < self._next:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._next = now + self._interval
        if suppressed:
            log.warning(message + " (%d more like it suppressed)", *args, suppressed)
        else:
            log.warning(message, *args)


class _JobKeyOnly:
    """ZAP credentials provider: admit only clients presenting the job's own public key."""

    def __init__(self, public: str) -> None:
        self._public = public.encode("ascii")
        self._refused = RateLimitedWarning()

    def callback(self, domain: str, key: bytes) -> bool:
        if key == self._public:
            return True
        self._refused.warn(
            "refused a peer whose CURVE key (%s...) is not this job's: nothing it sent was read",
            key[:8].decode("ascii", "replace"),
        )
        return False


class _Context:
    """One zmq context and ZAP authenticator per process."""

    _lock = threading.Lock()
    _instances: dict[CurveKeys, _Context] = {}  # noqa: RUF012 - a per-process registry

    def __init__(self, keys: CurveKeys) -> None:
        self.zmq = zmq.Context()
        self.keys = keys
        self.auth = ThreadAuthenticator(self.zmq, log=logging.getLogger(__name__ + ".zap"))
        self.auth.start()
        self.auth.configure_curve_callback(
            domain=_ZAP_DOMAIN, credentials_provider=_JobKeyOnly(keys.public)
        )

    @classmethod
    def get(cls, keys: CurveKeys) -> _Context:
        with cls._lock:
            if keys not in cls._instances:
                cls._instances[keys] = _Context(keys)
            return cls._instances[keys]


def _server_socket(ctx: _Context, kind: int) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = ctx.zmq.socket(kind)
    sock.curve_secretkey = ctx.keys.secret.encode("ascii")
    sock.curve_publickey = ctx.keys.public.encode("ascii")
    sock.curve_server = True
    sock.zap_domain = _ZAP_DOMAIN.encode("ascii")
    sock.maxmsgsize = _MAX_FRAME
    sock.linger = 0
    sock.sndhwm = 100_000
    sock.rcvhwm = 100_000
    return sock


def _client_socket(ctx: _Context, kind: int, identity: bytes | None = None) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = ctx.zmq.socket(kind)
    sock.curve_secretkey = ctx.keys.secret.encode("ascii")
    sock.curve_publickey = ctx.keys.public.encode("ascii")
    sock.curve_serverkey = ctx.keys.public.encode("ascii")
    if identity is not None:
        sock.identity = identity
    sock.maxmsgsize = _MAX_FRAME
    sock.linger = 0
    sock.sndhwm = 100_000
    sock.rcvhwm = 100_000
    return sock


def encode(message: object) -> list[bytes | memoryview]:
    """The message pickled, in frames of at most FRAME_BYTES."""
    data = memoryview(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
    return [data[i : i + FRAME_BYTES] for i in range(0, max(len(data), 1), FRAME_BYTES)]


def decode(frames: list[bytes]) -> Any:
    """The message whose frames these are (what `encode` made)."""
    return pickle.loads(frames[0] if len(frames) == 1 else b"".join(frames))


class _Endpoint:
    """An I/O thread owning one socket: receives, drains the outbox, ticks."""

    def __init__(
        self, sock: zmq.Socket[bytes], tick: float, on_tick: Callable[[], None] | None, name: str
    ) -> None:
        self._sock = sock
        self._outbox: collections.deque[list[bytes | memoryview]] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # Guards the wake pipe: a sender racing the I/O thread's exit must not write to a
        # closed descriptor, or to another file that reused its number.
        self._wake_lock = threading.Lock()
        self._wake_open = True
        self._tick = tick
        self._on_tick = on_tick
        self._closed = threading.Event()
        self._monitor: zmq.Socket[bytes] | None = None
        self._refused = RateLimitedWarning()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _watch_handshakes(self) -> None:
        self._monitor = self._sock.get_monitor_socket(_HANDSHAKE_FAILURES)

    def _start(self) -> None:
        self._thread.start()

    def _post(self, frames: list[bytes | memoryview]) -> None:
        if self._closed.is_set():
            return
        self._outbox.append(frames)
        self._wake()

    def _wake(self) -> None:
        with self._wake_lock, contextlib.suppress(BlockingIOError):
            if self._wake_open:
                os.write(self._wake_w, b"x")

    def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued, then close the socket."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _handle(self, frames: list[bytes]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        next_tick = time.monotonic() + self._tick
        try:
            while True:
                timeout_ms = max(0, int((next_tick - time.monotonic()) * 1000))
                events = dict(poller.poll(timeout_ms))
                if self._wake_r in events:
                    os.read(self._wake_r, 65536)
                self._drain_outbox()
                if self._closed.is_set():
                    return
                if self._sock in events:
                    for _ in range(1000):
                        try:
                            frames = self._sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        try:
                            self._handle(frames)
                        except Exception:
                            log.exception("handling a message on %s failed", self._thread.name)
                if self._monitor is not None and self._monitor in events:
                    event = recv_monitor_message(self._monitor)
                    self._refused.warn(
                        "refused a connection on %s: CURVE handshake failed (event %s)",
                        event.get("endpoint", b"?"),
                        event.get("event"),
                    )
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._tick
                    if self._on_tick is not None:
                        try:
                            self._on_tick()
                        except Exception:
                            log.exception("periodic work on %s failed", self._thread.name)
        finally:
            self._drain_outbox()
            if self._monitor is not None:
                self._sock.disable_monitor()
                self._monitor.close(0)
            self._sock.close(0)
            with self._wake_lock:
                self._wake_open = False
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _drain_outbox(self) -> None:
        while self._outbox:
            frames = self._outbox.popleft()
            try:
                self._sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                log.warning("dropped a message on %s: peer not reachable", self._thread.name)
            except zmq.ZMQError as exc:
                log.warning("send on %s failed: %s", self._thread.name, exc)


class Server(_Endpoint):
    """A CURVE ROUTER: on_message(peer_identity, message) runs on its I/O thread."""

    def __init__(
        self,
        keys: CurveKeys,
        host: str,
        port: int,
        on_message: Callable[[bytes, Any], None],
        on_tick: Callable[[], None] | None = None,
        tick: float = 0.05,
        name: str = "router",
    ) -> None:
        ctx = _Context.get(keys)
        sock = _server_socket(ctx, zmq.ROUTER)
        try:
            if port == 0:
                self.port = sock.bind_to_random_port(f"tcp://{host}")
            else:
                sock.bind(f"tcp://{host}:{port}")
                self.port = port
        except zmq.ZMQError as exc:
            sock.close(0)
            raise OSError(f"cannot listen on {host}:{port}: {exc}") from exc
        super().__init__(sock, tick, on_tick, name)
        self._on_message = on_message
        self._watch_handshakes()
        self._start()

    def send(self, peer: bytes, message: object) -> None:
        self._post([peer, *encode(message)])

    def _handle(self, frames: list[bytes]) -> None:
        self._on_message(frames[0], decode(frames[1:]))


class Client(_Endpoint):
    """A CURVE DEALER connected to a server: on_message(message) runs on its I/O thread."""

    def __init__(
        self,
        keys: CurveKeys,
        address: str,
        identity: str,
        on_message: Callable[[Any], None],
        on_tick: Callable[[], None] | None = None,
        tick: float = 0.05,
        name: str = "dealer",
    ) -> None:
        ctx = _Context.get(keys)
        sock = _client_socket(ctx, zmq.DEALER, identity.encode("utf-8"))
        sock.connect(address)
        super().__init__(sock, tick, on_tick, name)
        self._on_message = on_message
        self._start()

    def send(self, message: object) -> None:
        self._post(encode(message))

    def _handle(self, frames: list[bytes]) -> None:
        self._on_message(decode(frames))


class RequestClient:
    """Synchronous request-reply over DEALER sockets, one per (thread, peer): for block fetches.

    `abort()` is polled while waiting, so a fetch from a peer the driver declared
    lost fails at once instead of waiting out the timeout. `close()` makes requests in
    flight give up the same way before it closes their sockets: a ZeroMQ socket closed
    under another thread fails there with "Socket operation on non-socket".
    """

    def __init__(self, keys: CurveKeys, timeout: float = 30.0) -> None:
        self._ctx = _Context.get(keys)
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)
        self._all: list[zmq.Socket[bytes]] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._closing = False

    def request(self, address: str, message: object, abort: Callable[[], bool]) -> Any:
        """The peer's answer; raises ConnectionError when it does not come within the timeout,
        `abort()` turns true, or the client is closing."""
        with self._lock:
            if self._closing:
                raise ConnectionError(f"not asking {address}: the client is closed")
            self._in_flight += 1
        try:
            return self._request(address, message, abort)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._idle.notify_all()

    def _request(self, address: str, message: object, abort: Callable[[], bool]) -> Any:
        sockets: dict[str, zmq.Socket[bytes]] = self._local.__dict__.setdefault("sockets", {})
        sock = sockets.get(address)
        if sock is None:
            sock = sockets[address] = _client_socket(self._ctx, zmq.DEALER)
            sock.connect(address)
            with self._lock:
                self._all.append(sock)
        request_id = next(self._ids)
        sock.send_multipart([str(request_id).encode(), *encode(message)])
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if sock.poll(50):
                frames = sock.recv_multipart()
                if frames[0] == str(request_id).encode():
                    return decode(frames[1:])
                continue
            if abort() or self._closing:
                break
        sock.close(0)
        del sockets[address]
        with self._lock:
            self._all.remove(sock)
        raise ConnectionError(f"no answer from {address}")

    def close(self, timeout: float = 2.0) -> None:
        """Make requests in flight give up (within one poll, 50 ms), wait up to `timeout`
        seconds for them, then close every socket this client opened."""
        with self._lock:
            self._closing = True
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
            for sock in self._all:
                sock.close(0)
            self._all.clear()


class RequestServer(Server):
    """A Server whose handler answers each request; replies carry the request id back."""

    def __init__(
        self,
        keys: CurveKeys,
        host: str,
        port: int,
        answer: Callable[[Any], object],
        name: str = "block-server",
    ) -> None:
        self._answer = answer
        super().__init__(keys, host, port, self._ignore, name=name)

    @staticmethod
    def _ignore(peer: bytes, message: object) -> None:
        del peer, message

    def _handle(self, frames: list[bytes]) -> None:
        peer, request_id = frames[0], frames[1]
        self._post([peer, request_id, *encode(self._answer(decode(frames[2:])))])
