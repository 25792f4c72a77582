"""rabbitmq_stream: a reliable receiver on a RabbitMQ queue, with pika.

A delivery is acknowledged only once the block holding it is stored (kept on
two executors and, with the write-ahead log on, in the log): an executor or
driver killed, or a connection dropped, before the acknowledgement gets the
delivery back from the broker, so nothing acknowledged is ever lost. Such a
redelivery would be a second copy of a stored message; with message ids the
stream drops it (see dedupe_by_id), without them the stream is at-least-once.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubestream.errors import USER_CODE_ERRORS, ConfigError, require
from kubestream.executor.receiver import Receiver
from kubestream.streaming.sources.receiver_stream import ReceiverInputDStream
from kubestream.streaming.state import State, StateSpec

if TYPE_CHECKING:
    from kubestream.streaming.dstream import DStream
    from kubestream.streaming.env import StreamingEnv

log = logging.getLogger(__name__)

# RabbitMQ closes a channel whose delivery stays unacknowledged this long (its
# consumer_timeout default); a block must be stored and acknowledged well within it.
CONSUMER_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class Delivery:
    """What a message handler gets: the body (bytes) and the message's AMQP properties."""

    body: bytes
    message_id: str | None
    headers: dict[str, Any]
    routing_key: str
    redelivered: bool


def body_text(delivery: Delivery) -> str:
    """The default message handler: the body decoded as UTF-8 (invalid bytes replaced)."""
    return delivery.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class RabbitMQSettings:
    """Where and how a receiver connects; repr shows no password.

    password_env (a variable the StreamingJob's secretRefs set on every pod) and
    password_file (a mounted Secret) are read on the executor when it connects, so the
    password never travels with the job; password, if given instead, travels inside the
    pickled receiver over the job's encrypted transport.
    """

    host: str
    port: int
    queue: str
    virtual_host: str = "/"
    username: str = "guest"
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    declare_queue: bool = True
    exchange: str | None = None
    routing_key: str = ""
    heartbeat: int = 30

    def __post_init__(self) -> None:
        require(
            isinstance(self.port, int)
            and not isinstance(self.port, bool)
            and 1 <= self.port <= 65535,
            "port",
            self.port,
            "a whole number from 1 to 65535",
        )
        require(
            isinstance(self.queue, str) and bool(self.queue), "queue", self.queue, "a queue name"
        )
        given = [self.password, self.password_file, self.password_env]
        require(
            sum(p is not None for p in given) <= 1,
            "password_file",
            self.password_file,
            "one of password, password_file and password_env, not several",
        )

    def connection_parameters(self) -> Any:
        """pika's ConnectionParameters; reads password_file now. Never log the result."""
        import pika  # noqa: PLC0415  (executors import pika only when a receiver connects)

        password = self.password
        if self.password_env is not None:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(
                    f"password_env {self.password_env!r} is not set on this executor: add it "
                    "to the StreamingJob's spec.secretRefs"
                )
        if self.password_file is not None:
            try:
                password = Path(self.password_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"password_file {self.password_file!r} cannot be read ({exc.strerror}): "
                    "mount the Secret that holds the password there"
                ) from None
        tls = None
        if self.ca_file is not None:
            context = ssl.create_default_context(cafile=self.ca_file)
            tls = pika.SSLOptions(context, self.host)
        return pika.ConnectionParameters(
            host=self.host,
            port=self.port,
            virtual_host=self.virtual_host,
            credentials=pika.PlainCredentials(self.username, password or "guest"),
            ssl_options=tls,
            heartbeat=self.heartbeat,
            connection_attempts=1,
            socket_timeout=10,
            blocked_connection_timeout=60,
        )


@dataclass
class Backoff:
    """Exponential reconnect delays: initial, doubled per failure up to maximum."""

    initial: float = 0.2
    maximum: float = 10.0
    _next: float = 0.0

    def delay(self) -> float:
        self._next = min(self.maximum, self._next * 2) if self._next else self.initial
        return self._next

    def reset(self) -> None:
        self._next = 0.0


class RabbitMQReceiver(Receiver):
    """Consumes a queue with manual acknowledgements, storing up to block_size deliveries
    (or what arrived within block_interval seconds) as one block, then acknowledging them
    with one multiple-ack. The prefetch equals block_size: the broker never hands this
    receiver more than one block's worth of unacknowledged deliveries."""

    def __init__(
        self,
        settings: RabbitMQSettings,
        message_handler: Callable[[Delivery], Any],
        block_size: int,
        block_interval: float,
        id_header: str | None,
    ) -> None:
        self.settings = settings
        self.message_handler = message_handler
        self.block_size = block_size
        self.block_interval = block_interval
        self.id_header = id_header
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_thread"], state["_stopping"], state["_host"] = None, None, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stopping = threading.Event()

    def on_start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"rabbitmq-{self.settings.queue}", daemon=True
        )
        self._thread.start()

    def on_stop(self) -> None:
        """Return unstored deliveries to the queue and close, before the driver moves us."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)

    def _stopped(self) -> bool:
        return self._stopping.is_set() or self.is_stopped()

    def _run(self) -> None:
        import pika.exceptions  # noqa: PLC0415

        backoff = Backoff()
        where = f"{self.settings.host}:{self.settings.port} queue {self.settings.queue!r}"
        while not self._stopped():
            try:
                self._consume(backoff)
            except (pika.exceptions.AMQPError, OSError) as exc:
                if self._stopped():
                    return
                delay = backoff.delay()
                # pika's messages name hosts and reply codes, never credentials.
                self.report_error(
                    f"{where}: {type(exc).__name__}; reconnecting in {delay:.1f} s", exc
                )
                self._stopping.wait(delay)
            except ConfigError as exc:
                self.report_error(f"{where}: {exc}")
                self._stopping.wait(backoff.delay())

    def _consume(self, backoff: Backoff) -> None:
        import pika  # noqa: PLC0415

        connection = pika.BlockingConnection(self.settings.connection_parameters())
        try:
            channel = connection.channel()
            self._prepare(channel)
            channel.basic_qos(prefetch_count=self.block_size)
            backoff.reset()
            pending: list[Any] = []
            last_tag = 0
            deadline = 0.0
            for method, properties, body in channel.consume(
                self.settings.queue, auto_ack=False, inactivity_timeout=0.05
            ):
                if self._stopped():
                    break
                if method is not None:
                    if not pending:
                        deadline = time.monotonic() + self.block_interval
                    pending.append(self._record(method, properties, body))
                    last_tag = method.delivery_tag
                if pending and (len(pending) >= self.block_size or time.monotonic() >= deadline):
                    self.store_block(pending)
                    channel.basic_ack(last_tag, multiple=True)
                    pending = []
            if pending:
                # Deliveries not stored go back to the queue, for whichever consumer is next.
                channel.basic_nack(last_tag, multiple=True, requeue=True)
            channel.cancel()
        finally:
            if connection.is_open:
                connection.close()

    def _prepare(self, channel: Any) -> None:
        import pika.exceptions  # noqa: PLC0415

        queue = self.settings.queue
        try:
            channel.queue_declare(queue, durable=True, passive=not self.settings.declare_queue)
        except pika.exceptions.ChannelClosedByBroker as exc:
            raise ConfigError(
                f"queue {queue!r} cannot be used ({exc.reply_text}): declare it, or pass "
                "declare_queue=True (a durable queue)"
            ) from None
        if self.settings.exchange is not None:
            channel.queue_bind(queue, self.settings.exchange, self.settings.routing_key)

    def _record(self, method: Any, properties: Any, body: bytes) -> Any:
        headers = dict(properties.headers or {})
        delivery = Delivery(
            bytes(body), properties.message_id, headers, method.routing_key, method.redelivered
        )
        try:
            record = self.message_handler(delivery)
        except USER_CODE_ERRORS as exc:
            # Raised out of _consume: the connection closes, so this delivery and the rest
            # not yet stored go back to the queue; the receiver retries after a backoff.
            raise ConfigError(
                f"message_handler failed on the message with delivery tag "
                f"{method.delivery_tag} and message_id {delivery.message_id!r} "
                f"({type(exc).__name__}: {exc}); it stays in the queue: fix the handler, or "
                "give the queue a dead-letter exchange and reject such messages"
            ) from exc
        if self.id_header is None:
            return record
        message_id = (
            delivery.message_id if self.id_header == "message_id" else headers.get(self.id_header)
        )
        return (None if message_id is None else str(message_id), record)


def first_delivery(message_id: str, boxed: tuple[Any] | None, seen: State[bool]) -> list[Any]:
    """map_with_state function of the dedupe step: the record (boxed in a 1-tuple, so a None
    record is told from a timeout) the first time its id is seen, nothing after."""
    if boxed is None or seen.is_timing_out() or seen.exists():
        return []
    seen.update(True)
    return [boxed[0]]


def _has_id(pair: tuple[str | None, Any]) -> bool:
    return pair[0] is not None


def _has_no_id(pair: tuple[str | None, Any]) -> bool:
    return pair[0] is None


def _boxed(pair: tuple[str | None, Any]) -> tuple[str, tuple[Any]]:
    """(id, (record,)) for a pair _has_id kept."""
    return str(pair[0]), (pair[1],)


def _record_of(pair: tuple[str | None, Any]) -> Any:
    return pair[1]


def _records(records: list[Any]) -> list[Any]:
    return records


def rabbitmq_stream(
    env: StreamingEnv,
    settings: RabbitMQSettings,
    *,
    receivers: int,
    message_handler: Callable[[Delivery], Any],
    block_size: int,
    block_interval: float,
    id_header: str | None,
    dedupe_window: float,
) -> DStream[Any]:
    """`receivers` receivers on the queue, their records in one stream; with id_header,
    a record whose id was seen within dedupe_window seconds is dropped (the ids live in
    map_with_state's checkpointed state, shared by all the receivers)."""
    check_block(block_size, block_interval)
    require(
        isinstance(receivers, int) and not isinstance(receivers, bool) and receivers >= 1,
        "receivers",
        receivers,
        "a whole number of at least 1",
    )
    require(callable(message_handler), "message_handler", message_handler, "callable")
    require(
        isinstance(dedupe_window, int | float) and dedupe_window > 0,
        "dedupe_window",
        dedupe_window,
        "a positive number of seconds",
    )
    streams: list[DStream[Any]] = [
        ReceiverInputDStream(
            env, RabbitMQReceiver(settings, message_handler, block_size, block_interval, id_header)
        )
        for _ in range(receivers)
    ]
    stream = streams[0].union(*streams[1:]) if receivers > 1 else streams[0]
    return stream if id_header is None else dedupe_by_id(stream, dedupe_window)


def dedupe_by_id(stream: DStream[tuple[str | None, Any]], window: float) -> DStream[Any]:
    """The records of (id, record) pairs, each id's first within `window` seconds only;
    records with id None all pass. The ids seen are map_with_state's state: checkpointed,
    partitioned by id, so one stream fed by several receivers drops a copy whichever
    receiver got it."""
    spec: StateSpec[str, tuple[Any], bool, list[Any]] = StateSpec.of(first_delivery, timeout=window)
    first = stream.filter(_has_id).map(_boxed).map_with_state(spec).flat_map(_records)
    return first.union(stream.filter(_has_no_id).map(_record_of))


def check_block(block_size: int, block_interval: float) -> None:
    """ConfigError unless a block is acknowledged well within the consumer timeout."""
    require(
        isinstance(block_size, int)
        and not isinstance(block_size, bool)
        and 1 <= block_size <= 65535,
        "block_size",
        block_size,
        "a whole number from 1 to 65535 (it is the channel's prefetch count)",
    )
    require(
        isinstance(block_interval, int | float)
        and not isinstance(block_interval, bool)
        and 0 < block_interval <= CONSUMER_TIMEOUT_SECONDS / 10,
        "block_interval",
        block_interval,
        f"seconds above 0 and at most {CONSUMER_TIMEOUT_SECONDS / 10:.0f} (a tenth of the "
        "broker's consumer timeout)",
    )
