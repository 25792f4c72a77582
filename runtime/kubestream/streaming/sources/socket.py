"""socket_text_stream: a receiver reading UTF-8 lines from a TCP server."""

from __future__ import annotations

import contextlib
import socket
import threading

from kubestream.executor.receiver import Receiver


class SocketTextReceiver(Receiver):
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._socket: socket.socket | None = None

    def on_start(self) -> None:
        threading.Thread(
            target=self._receive, name=f"socket-{self.host}:{self.port}", daemon=True
        ).start()

    def on_stop(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _receive(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError as exc:
            self.restart(f"cannot connect to {self.host}:{self.port}", exc)
            return
        sock.settimeout(None)
        self._socket = sock
        pending = b""
        try:
            while not self.is_stopped():
                chunk = sock.recv(65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if lines:
                    self.store_many(line.decode("utf-8", "replace").rstrip("\r") for line in lines)
        except OSError as exc:
            if not self.is_stopped():
                self.restart(f"connection to {self.host}:{self.port} failed", exc)
            return
        if pending:
            self.store(pending.decode("utf-8", "replace"))
        if not self.is_stopped():
            self.restart(f"{self.host}:{self.port} closed the connection")
