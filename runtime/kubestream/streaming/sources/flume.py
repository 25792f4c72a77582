"""flume_stream: a receiver that a Flume agent's Thrift sink delivers to.

Why Thrift: the agent's HTTP sink sends one POST per event with the headers
dropped (and, by default, rolls back even on 200), so every event would be its
own stored block; the Thrift and Avro sinks send a batch of events with their
headers per call. Thrift's framing and compact protocol are served here by
thriftpy2 from Flume's own IDL (below); Avro IPC would need its Netty framing
written by hand. A batch is answered OK only once it is stored, so a failure or
a lost executor rolls the agent's channel transaction back: at-least-once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
from typing import Any

from kubestream.executor.receiver import Receiver

log = logging.getLogger(__name__)

# flume-ng-sdk/src/main/thrift/flume.thrift (Flume 1.11), the protocol of its Thrift sink.
FLUME_IDL = """
namespace java org.apache.flume.thrift

struct ThriftFlumeEvent {
  1: required map <string, string> headers,
  2: required binary body,
}

enum Status {
  OK,
  FAILED,
  ERROR,
  UNKNOWN
}

service ThriftSourceProtocol {
  Status append(1: ThriftFlumeEvent event),
  Status appendBatch(1: list<ThriftFlumeEvent> events),
}
"""


def _flume_module() -> Any:
    import thriftpy2  # noqa: PLC0415  (executors load it only when the receiver starts)

    return thriftpy2.load_fp(io.StringIO(FLUME_IDL), module_name="flume_thrift")


class _Handler:
    """ThriftSourceProtocol: store the batch as one block, then answer OK."""

    def __init__(self, receiver: FlumeReceiver, status: Any) -> None:
        self._receiver = receiver
        self._status = status

    def append(self, event: Any) -> int:
        return self.appendBatch([event])

    def appendBatch(self, events: list[Any]) -> int:  # noqa: N802  (the IDL's name)
        if self._receiver.is_stopped():
            return int(self._status.FAILED)
        try:
            self._receiver.store_block([(dict(e.headers or {}), bytes(e.body)) for e in events])
        except Exception as exc:
            self._receiver.report_error("storing a Flume batch failed; the agent resends it", exc)
            return int(self._status.FAILED)
        return int(self._status.OK)


class FlumeReceiver(Receiver):
    """Listens on host:port for a Flume agent's Thrift sink (framed transport, compact
    protocol: the sink's defaults); records are (headers dict, body bytes)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["host"], state["port"])  # type: ignore[misc]

    def on_start(self) -> None:
        self._stopping.clear()
        threading.Thread(target=self._listen, name=f"flume-{self.port}", daemon=True).start()

    def on_stop(self) -> None:
        """Close the port and every connection: a batch not yet answered is rolled back by
        the agent and sent again to wherever the receiver starts next."""
        self._stopping.set()
        with self._lock:
            server, self._server = self._server, None
            clients, self._clients = self._clients, set()
        for sock in [*clients, *([server] if server else [])]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _listen(self) -> None:
        """Bind (retrying with backoff while the port is taken, e.g. by a receiver still
        closing), then accept the sink's connections."""
        module = _flume_module()
        delay = 0.2
        while True:
            try:
                server = socket.create_server((self.host, self.port))
                break
            except OSError as exc:
                self.report_error(f"cannot listen on {self.host}:{self.port}; retrying", exc)
                if self._stopping.wait(delay) or self.is_stopped():
                    return
                delay = min(delay * 2, 10.0)
        with self._lock:
            if self._stopping.is_set():
                server.close()
                return
            self._server = server
        while not self.is_stopped():
            try:
                client, _ = server.accept()
            except OSError:
                return
            with self._lock:
                if self._server is None:
                    client.close()
                    return
                self._clients.add(client)
            threading.Thread(
                target=self._serve, args=(client, module), name="flume-client", daemon=True
            ).start()

    def _serve(self, client: socket.socket, module: Any) -> None:
        from thriftpy2.protocol import TCompactProtocolFactory  # noqa: PLC0415
        from thriftpy2.thrift import TProcessor  # noqa: PLC0415
        from thriftpy2.transport import TFramedTransportFactory, TSocket  # noqa: PLC0415
        from thriftpy2.transport.base import TTransportException  # noqa: PLC0415

        processor = TProcessor(module.ThriftSourceProtocol, _Handler(self, module.Status))
        transport = TFramedTransportFactory().get_transport(TSocket(sock=client))
        protocol = TCompactProtocolFactory().get_protocol(transport)
        try:
            while not self.is_stopped():
                processor.process(protocol, protocol)
        except (TTransportException, OSError, EOFError):
            pass
        finally:
            with self._lock:
                self._clients.discard(client)
            with contextlib.suppress(OSError):
                client.close()
