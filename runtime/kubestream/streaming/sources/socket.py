"""socket_text_stream: a receiver reading UTF-8 text records from a TCP server.

Records end where Hadoop's line reader ends them (core/lines.py), found in one
pass over each chunk received, so a long record costs linear time. A record over
`max_record_bytes` is skipped to its end without being kept, and counted and warned
about as a bad record (reason "too_long"); bytes that are not UTF-8 become U+FFFD,
counted as "undecodable".
"""

from __future__ import annotations

import contextlib
import socket
import threading

from kubestream.core.lines import LineSplitter
from kubestream.executor.receiver import Receiver

DEFAULT_MAX_RECORD_BYTES = 1 << 20
"""Bytes (1 MiB, as Kafka's default largest message)."""

RECEIVE_BYTES = 65536


class SocketTextReceiver(Receiver):
    def __init__(
        self, host: str, port: int, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        self.host = host
        self.port = port
        self.max_record_bytes = max_record_bytes
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
        splitter = LineSplitter(self.max_record_bytes)
        try:
            while not self.is_stopped():
                chunk = sock.recv(RECEIVE_BYTES)
                if not chunk:
                    break
                self._store(splitter, splitter.feed(chunk))
        except OSError as exc:
            if not self.is_stopped():
                self.restart(f"connection to {self.host}:{self.port} failed", exc)
            return
        self._store(splitter, splitter.finish())
        if not self.is_stopped():
            self.restart(f"{self.host}:{self.port} closed the connection")

    def _store(self, splitter: LineSplitter, records: list[bytes]) -> None:
        if splitter.dropped:
            dropped, splitter.dropped = splitter.dropped, 0
            self.report_bad_records(
                "too_long",
                dropped,
                f"records over max_record_bytes={self.max_record_bytes} from "
                f"{self.host}:{self.port} dropped",
            )
        if not records:
            return
        texts = []
        undecodable = 0
        for raw in records:
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                undecodable += 1
                texts.append(raw.decode("utf-8", "replace"))
        if undecodable:
            self.report_bad_records(
                "undecodable",
                undecodable,
                f"records from {self.host}:{self.port} not UTF-8, bad bytes replaced by U+FFFD",
            )
        self.store_many(texts)
