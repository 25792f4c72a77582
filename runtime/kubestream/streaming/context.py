"""StreamingContext: the entry point of a streaming application.

It owns the DStream graph and the batch timer, and runs on an Engine: executor
processes under `kubestream run`/`driver`, or in-process executors when created
directly (handy in tests and notebooks, like Spark's local mode).
"""

from __future__ import annotations

import enum
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from kubestream import settings
from kubestream.clock import Clock, SystemClock
from kubestream.core import resources
from kubestream.core.engine import Engine
from kubestream.core.input_files import DECODE_ERROR_POLICIES, check_encoding
from kubestream.core.protocol import ReceiverStatus
from kubestream.core.rdd import RDD
from kubestream.core.typevars import T, U
from kubestream.errors import USER_CODE_ERRORS, ConfigError, JobFailedError, require, require_count
from kubestream.executor.in_process import InProcessExecutors
from kubestream.executor.receiver import Receiver
from kubestream.streaming.batch import BatchInfo
from kubestream.streaming.checkpointing import Checkpointer, CheckpointHealth
from kubestream.streaming.dstream import DStream, TransformedDStream, UnionDStream, arity
from kubestream.streaming.env import StreamingEnv
from kubestream.streaming.graph import DStreamGraph
from kubestream.streaming.listener import StreamingListener
from kubestream.streaming.scheduler.job_generator import JobGenerator, first_batch_time
from kubestream.streaming.scheduler.job_scheduler import JobScheduler
from kubestream.streaming.scheduler.rate_controller import PIDRateEstimator, RateController
from kubestream.streaming.scheduler.receiver_tracker import ReceiverTracker, default_block_interval
from kubestream.streaming.sources.binary_records import BinaryRecordsInputDStream
from kubestream.streaming.sources.files import DEFAULT_MIN_REMEMBER_DURATION, FileInputDStream
from kubestream.streaming.sources.flume import FlumeReceiver
from kubestream.streaming.sources.kafka.client import BrokerClient, MessageHandler
from kubestream.streaming.sources.kafka.starting import StartingOffsets
from kubestream.streaming.sources.kafka.stream import KafkaInputDStream
from kubestream.streaming.sources.queue import QueueInputDStream
from kubestream.streaming.sources.rabbitmq import Delivery, RabbitMQSettings, body_text
from kubestream.streaming.sources.rabbitmq import rabbitmq_stream as _rabbitmq_stream
from kubestream.streaming.sources.rate import RateInputDStream
from kubestream.streaming.sources.receiver_stream import ReceiverInputDStream
from kubestream.streaming.sources.socket import DEFAULT_MAX_RECORD_BYTES, SocketTextReceiver

log = logging.getLogger(__name__)

WAL_DIR = "receivedData"


class StreamingContextState(enum.Enum):
    """A StreamingContext's lifecycle (Spark's StreamingContextState); the value is what the
    status document reports. Not kubestream.State, the per-key state of map_with_state."""

    INITIALIZED = "initialized"
    ACTIVE = "active"
    STOPPED = "stopped"


class StreamingContext:
    """The entry point of a streaming application: sources, the batch timer, the lifecycle.

    Parameters
    ----------
    batch_interval : float
        Seconds between batches, 0.1 to 3600. Window lengths and slides are
        multiples of it.
    checkpoint : str, optional
        Checkpoint directory, as checkpoint(directory).
    engine : Engine, optional
        The engine running the jobs; `kubestream run` passes its own. Default: a new
        engine with `executors` in-process executors (Spark's local mode).
    clock : Clock, optional
        Time source of the batch timer; tests pass a manual clock.
    executors : int
        In-process executors to start when no engine is given; at least 1.
    on_batch_failure : str
        What a failed batch does. "report" (the default, Spark's): later batches
        run, and await_termination / await_termination_or_timeout raise
        JobFailedError for the first failed batch. "continue": later batches run and
        the failure is only logged and recorded (status, metrics, listeners).
        "stop": the context stops; await_termination raises JobFailedError.
    graceful_timeout : float, optional
        Seconds a graceful stop waits for received data to be processed; default
        10 batch intervals.
    checkpoint_interval : float, optional
        Seconds between checkpoints of stateful and windowed streams' data, 0.1 to
        86400, rounded up to a multiple of their slides; default 10 s (Spark's),
        rounded likewise.
        Sources' positions are checkpointed every batch.
    write_ahead_log : bool
        Receivers write every block under the checkpoint directory before it is
        acknowledged, so a driver restart loses no received record (needs checkpoint).
    backpressure : bool
        Rate-limitable sources follow a PID estimate of the rate the job keeps up with.
    max_rate : int, optional
        Whole records per second each rate-limitable source reads at most, 1 to 10^9
        (Spark's spark.streaming.receiver.maxRate).
    block_interval : float, optional
        Seconds between the blocks a receiver cuts, 0.01 to 60 (Spark's
        spark.streaming.blockInterval); a batch's blocks are read as one run of near-equal
        length per core. Default: the longest interval up to 0.2 s that divides the batch
        interval into at least two blocks, so every batch gets as many.
    conf : Mapping[str, str], optional
        The application's own settings, read back as ``ssc.conf`` (read-only): under
        `kubestream run`/`driver` the files of ``--config DIR``, on Kubernetes the
        StreamingJob's spec.configuration.

    The ranges are those of the settings declared in kubestream.settings, the same
    the command line and the StreamingJob resource accept.

    Raises
    ------
    ConfigError
        An argument is out of its range or of the wrong type; the message names it
        and the value passed.
    """

    def __init__(
        self,
        batch_interval: float = 1.0,
        checkpoint: str | None = None,
        *,
        engine: Engine | None = None,
        clock: Clock | None = None,
        executors: int = 2,
        on_batch_failure: str = "report",
        graceful_timeout: float | None = None,
        checkpoint_interval: float | None = None,
        write_ahead_log: bool = False,
        backpressure: bool = False,
        max_rate: int | None = None,
        block_interval: float | None = None,
        conf: Mapping[str, str] | None = None,
    ) -> None:
        checks: tuple[tuple[settings.Setting[Any], object], ...] = (
            (settings.BATCH_INTERVAL, batch_interval),
            (settings.ON_BATCH_FAILURE, on_batch_failure),
            (settings.MAX_RATE, max_rate),
            (settings.BLOCK_INTERVAL, block_interval),
            (settings.CHECKPOINT_INTERVAL, checkpoint_interval),
            (settings.GRACEFUL_TIMEOUT, graceful_timeout),
        )
        for setting, value in checks:
            try:
                setting.check(value)
            except ValueError as exc:
                raise ConfigError(f"{setting.name} {exc}") from None
        self.conf: Mapping[str, str] = MappingProxyType(dict(conf or {}))
        if engine is None:
            require_count("executors", executors)
        self.batch_interval = batch_interval
        self.backpressure = backpressure
        self.max_rate = max_rate
        self.batch_interval_ms = round(batch_interval * 1000)
        self.checkpoint_dir: str | None = None
        self._checkpointer: Checkpointer | None = None
        self._checkpoint_interval = checkpoint_interval
        self.write_ahead_log = write_ahead_log
        self.graph_lock = threading.RLock()
        self.clock: Clock = clock or SystemClock()
        self.graceful_timeout = graceful_timeout or 10 * batch_interval
        self._own_executors = None
        if engine is None:
            engine = Engine()
            self._own_executors = InProcessExecutors(engine, executors)
        self.engine = engine
        self.graph = DStreamGraph()
        self.receiver_tracker = ReceiverTracker(
            engine.send,
            engine.task_scheduler.executors,
            block_interval or default_block_interval(batch_interval),
        )
        self.env = StreamingEnv(engine, self.graph, self.receiver_tracker, self.batch_interval_ms)
        self.env.context = self
        self._remember_ms = 0
        self.listeners: list[StreamingListener] = []
        self.state = StreamingContextState.INITIALIZED
        self._terminated = threading.Event()
        self._scheduler = JobScheduler(
            self.listeners,
            self._batch_completed,
            on_batch_failure=on_batch_failure,
            now=self.clock.now,
        )
        self._generator = JobGenerator(
            self.env, self.clock, self._scheduler.submit, self.graph_lock
        )
        if checkpoint:
            self.checkpoint(checkpoint)
        self.receiver_tracker.status_listeners.append(self._receiver_status)

    def checkpoint(self, directory: str) -> None:
        """Checkpoint into `directory`: a context started on one holding a checkpoint resumes.

        The directory receives sources' positions every batch and stateful and
        windowed streams' data every checkpoint interval; with the write-ahead log,
        executors write under it too, so it must then be storage they share.
        Resuming requires the same graph (same operators in the same order) and
        batch interval; start() raises ConfigError naming what changed otherwise.
        Call before start().
        """
        self.checkpoint_dir = directory
        self._checkpointer = Checkpointer(
            self.env, self.graph_lock, directory, self._checkpoint_interval, now=self.clock.now
        )
        self._generator.checkpointer = self._checkpointer

    @property
    def checkpoint_health(self) -> CheckpointHealth | None:
        """Whether checkpoints are being written (None without a checkpoint directory)."""
        return None if self._checkpointer is None else self._checkpointer.health

    @staticmethod
    def get_or_create(
        checkpoint_dir: str, create: Callable[[], StreamingContext]
    ) -> StreamingContext:
        """Spark's getOrCreate: `create()` builds the context and its graph; when
        checkpoint_dir holds a checkpoint, start() resumes that graph's positions and
        state from it. The graph is always built by `create`, so it must build the
        same graph every run (see checkpoint())."""
        ssc = create()
        if ssc.checkpoint_dir != checkpoint_dir:
            ssc.checkpoint(checkpoint_dir)
        return ssc

    @staticmethod
    def get_active() -> StreamingContext | None:
        """The context started most recently and not stopped since, or None (Spark's getActive).

        Unlike Spark, one process may run several contexts at once (tests do).
        """
        with _ACTIVE_LOCK:
            return _ACTIVE[-1] if _ACTIVE else None

    @staticmethod
    def get_active_or_create(
        checkpoint_dir: str | None, create: Callable[[], StreamingContext]
    ) -> StreamingContext:
        """get_active(), or else get_or_create(checkpoint_dir, create) (create() without one)."""
        active = StreamingContext.get_active()
        if active is not None:
            return active
        if checkpoint_dir is None:
            return create()
        return StreamingContext.get_or_create(checkpoint_dir, create)

    def remember(self, duration: float) -> None:
        """Keep every stream's RDDs for at least `duration` seconds (for DStream.slice, or
        RDDs a foreach_rdd keeps). Call before start().

        Raises
        ------
        ConfigError
            duration is not a positive number of seconds.
        """
        require(
            _is_number(duration) and duration > 0,
            "duration",
            duration,
            "a positive number of seconds",
        )
        self._remember_ms = max(self._remember_ms, round(duration * 1000))

    # --- sources --------------------------------------------------------------------------
    def queue_stream(
        self,
        batches: Iterable[Sequence[Any] | RDD[Any]],
        one_at_a_time: bool = True,
        default: Sequence[Any] | None = None,
    ) -> QueueInputDStream:
        """A stream of in-memory batches, for tests and examples (Spark's queueStream).

        Parameters
        ----------
        batches : iterable of sequences or RDDs
            The records of successive batches, or RDDs of this context's engine
            (ssc.engine.parallelize(records, partitions)) to fix their partitions;
            push() adds more while running. Only lists' records are counted in a
            batch's input records.
        one_at_a_time : bool
            True: one queued batch per batch interval; False: all queued ones at once.
        default : sequence, optional
            The records of a batch when the queue is empty; default: no records.

        Its batches live in the driver only, so a checkpointed context refuses it
        (ConfigError at start()).
        """
        return QueueInputDStream(self.env, batches, one_at_a_time, default)

    def text_file_stream(
        self,
        directory: str | os.PathLike[str],
        *,
        path_filter: Callable[[str], bool] | None = None,
        min_remember_duration: float = DEFAULT_MIN_REMEMBER_DURATION,
        encoding: str = "utf-8",
        on_decode_error: str = "replace",
    ) -> DStream[str]:
        """Records (str) of new files in `directory`, each file read once (Spark's textFileStream).

        A file belongs to the batch after it appears; one file is one partition. Records
        end at "\\n", "\\r\\n" or "\\r", as Hadoop's line reader ends them, and nowhere
        else. Files named *.gz, *.bz2, *.xz, *.lzma, *.zst are read decompressed. Write
        elsewhere and rename in, so no batch reads half a file. The directory must be
        readable by the driver and the executors. A file gone before its task reads it is
        skipped with a warning and counted (status "inputs": files_missing); a directory
        that cannot be listed is warned about and shown there as "problem".

        Parameters
        ----------
        directory : str or path
            The directory watched (not its subdirectories).
        path_filter : (str) -> bool, optional
            Called on the driver with each file's path; only files it accepts are read.
            Default: kubestream.default_path_filter, which skips names starting with "."
            or "_" and names of files still being written (ending "._COPYING_", ".tmp",
            ".temp", ".part", ".partial", ".crdownload", ".download", ".filepart",
            ".inprogress", ".swp" or "~").
        min_remember_duration : float
            Seconds, at least 0 (default 60, Spark's): files modified longer ago than
            this (rounded up to whole batches) are ignored, which bounds the files the
            stream remembers and checkpoints. Files are new if modified recently, so
            `mv` a file in, or touch it; do not copy it in with its old time kept.
        encoding : str
            Text encoding of the files (default "utf-8"); it must encode "\\r" and "\\n"
            as those bytes (UTF-8, Latin-1, ASCII, cp1252 ... not UTF-16).
        on_decode_error : str
            A record that is not text in `encoding`: "replace" (default; kept, each bad
            byte as U+FFFD), "skip" (dropped) or "fail" (the task fails, naming the file
            and record). Replaced and skipped records are counted (records_undecodable)
            and warned about once per file.

        Raises
        ------
        ConfigError
            A parameter is outside the range above.
        """
        require(
            isinstance(directory, str | os.PathLike) and os.fspath(directory),
            "directory",
            directory,
            "a path",
        )
        require(
            path_filter is None or callable(path_filter),
            "path_filter",
            path_filter,
            "None or a function of a path returning bool",
        )
        require(
            isinstance(min_remember_duration, int | float)
            and not isinstance(min_remember_duration, bool)
            and 0 <= min_remember_duration < float("inf"),
            "min_remember_duration",
            min_remember_duration,
            "a number of seconds, at least 0",
        )
        require(
            isinstance(encoding, str) and check_encoding(encoding),
            "encoding",
            encoding,
            'a text encoding that writes "\\r" and "\\n" as those bytes (utf-8, latin-1 ...)',
        )
        require(
            on_decode_error in DECODE_ERROR_POLICIES,
            "on_decode_error",
            on_decode_error,
            " or ".join(repr(p) for p in DECODE_ERROR_POLICIES),
        )
        return FileInputDStream(
            self.env,
            str(os.fspath(directory)),
            path_filter=path_filter,
            min_remember_duration=min_remember_duration,
            encoding=encoding,
            on_decode_error=on_decode_error,
        )

    def binary_records_stream(self, directory: str, record_length: int) -> DStream[bytes]:
        """Fixed-length records (bytes) of new files in `directory`, each file once.

        Files as in text_file_stream with its defaults (path filter, remember window, a
        file gone before its task skipped and counted), but never decompressed; each is
        split into records of `record_length` bytes. A file whose length is not a
        multiple of it fails its batch, naming it.

        Raises
        ------
        ConfigError
            record_length is not a whole number of at least 1.
        """
        return BinaryRecordsInputDStream(self.env, directory, record_length)

    def rate_stream(self, records_per_second: float) -> DStream[int]:
        """Consecutive ints from 0, `records_per_second` of them a second, made on executors.

        Raises
        ------
        ConfigError
            records_per_second is not a positive number.
        """
        return RateInputDStream(self.env, records_per_second)

    def socket_text_stream(
        self, host: str, port: int, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> DStream[str]:
        """Records (str) read from a TCP server at host:port, by a receiver on an executor.

        Records end at "\\n", "\\r\\n" or "\\r" (as text_file_stream's); the text is
        UTF-8, and bytes that are not are replaced by U+FFFD and counted (status
        receivers[].bad_records["undecodable"]).

        Parameters
        ----------
        host, port : str, int
            The server; port a whole number from 1 to 65535.
        max_record_bytes : int
            Longest record kept, in bytes, at least 1 (default 1 MiB): a longer one is
            skipped to its end without being held in memory, warned about and counted
            (receivers[].bad_records["too_long"]).

        Raises
        ------
        ConfigError
            A parameter is outside the range above.
        """
        require(
            isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535,
            "port",
            port,
            "a whole number from 1 to 65535",
        )
        require_count("max_record_bytes", max_record_bytes)
        return ReceiverInputDStream(self.env, SocketTextReceiver(host, port, max_record_bytes))

    def kafka_stream(
        self,
        topics: str | Sequence[str] | re.Pattern[str],
        kafka_params: Mapping[str, object],
        *,
        starting_offsets: StartingOffsets = "earliest",
        group_id: str | None = None,
        isolation_level: str = "read_committed",
        max_rate_per_partition: float | None = None,
        fail_on_data_loss: bool = True,
        partition_discovery_interval: float = 10.0,
        message_handler: MessageHandler | None = None,
        commit_offsets: bool = True,
        poll_timeout: float = 120.0,
        broker_client: BrokerClient | None = None,
    ) -> KafkaInputDStream:
        """Spark's direct Kafka stream: one RDD partition per topic-partition and batch, read
        by offset range (no receiver). Ranges live in the checkpoint, so a restarted driver
        replays unfinished batches exactly; `offset_ranges(batch_time)` tells what a batch read.

        Parameters
        ----------
        topics : str, sequence of str or re.Pattern
            Topic names, or a compiled pattern over whole names (internal topics never
            match). New partitions and new matching topics are read from their earliest
            offset once found.
        kafka_params : mapping
            librdkafka settings, "bootstrap.servers" required; security settings
            (security.protocol, sasl.*, ssl.*) as for confluent-kafka. Secrets are never
            logged or shown.
        starting_offsets : "earliest", "latest", mapping or FromTimestamp
            Where a fresh start begins: {(topic, partition): offset} (-2 earliest, -1
            latest; partitions left out start at earliest) or FromTimestamp(ms). A
            restarted driver resumes from its checkpoint instead.
        group_id : str, optional
            Consumer group each batch's end offsets are committed to once its outputs
            succeed, for lag tools only; default kafka_params' "group.id", else
            "kubestream-<topics>".
        isolation_level : "read_committed" or "read_uncommitted"
            read_committed (default) skips aborted records; ranges end at the last
            stable offset.
        max_rate_per_partition : float, optional
            Records per second each partition may give a batch; the context's max_rate
            and backpressure cap the whole stream, shared by lag.
        fail_on_data_loss : bool
            True (default): offsets gone from the broker (retention, topic recreated) fail
            the batch, naming topic, partition, wanted and available offsets. False: skip
            to the earliest offset with a "KafkaDataLoss" warning, counting the records.
        partition_discovery_interval : float
            Seconds between listings of topics and partitions (default 10).
        message_handler : callable, optional
            fn(KafkaMessage) -> record; default: (key, value) decoded as UTF-8.
        commit_offsets : bool
            False: commit nothing to the group.
        poll_timeout : float
            Seconds an executor waits without progress before failing its task.
        broker_client : BrokerClient, optional
            Used instead of connecting to the brokers (in-memory fakes in tests).

        Raises
        ------
        ConfigError
            A topic list, setting or option is invalid; the message names it.
        """
        return KafkaInputDStream(
            self.env,
            topics,
            kafka_params,
            starting_offsets=starting_offsets,
            group_id=group_id,
            isolation_level=isolation_level,
            max_rate_per_partition=max_rate_per_partition,
            fail_on_data_loss=fail_on_data_loss,
            partition_discovery_interval=partition_discovery_interval,
            message_handler=message_handler,
            commit_offsets=commit_offsets,
            poll_timeout=poll_timeout,
            broker_client=broker_client,
        )

    def rabbitmq_stream(
        self,
        host: str,
        port: int,
        queue: str,
        *,
        virtual_host: str = "/",
        username: str = "guest",
        password: str | None = None,
        password_file: str | None = None,
        password_env: str | None = None,
        ca_file: str | None = None,
        declare_queue: bool = True,
        exchange: str | None = None,
        routing_key: str = "",
        receivers: int = 1,
        message_handler: Callable[[Delivery], Any] = body_text,
        block_size: int = 500,
        block_interval: float = 0.5,
        id_header: str | None = None,
        dedupe_window: float = 600.0,
    ) -> DStream[Any]:
        """Messages of a RabbitMQ queue, read by `receivers` reliable receivers on executors.

        A delivery is acknowledged only after its block is stored (on two executors, and in
        the write-ahead log when it is on), so none acknowledged is lost when an executor or
        the driver is killed or a connection drops (receivers reconnect with backoff). What
        was delivered but not yet stored comes again: at-least-once, or each message once
        when id_header is given. A receiver moved off a draining executor returns its
        unstored deliveries to the queue first.

        Parameters
        ----------
        host, port, virtual_host : str, int, str
            The broker (amqp, or amqps when ca_file is given).
        queue : str
            Queue to consume; declared durable unless declare_queue is False (then it
            must exist).
        username, password, password_env, password_file : str
            Credentials. password_env names a variable the StreamingJob's secretRefs set
            and password_file a mounted Secret, both read on the executor, so the password
            stays out of the job; give at most one of the three. Never logged.
        ca_file : str, optional
            PEM CA bundle: connect with TLS and verify the broker's certificate for host.
        exchange, routing_key : str, optional
            Bind the queue to this exchange with this routing key.
        receivers : int
            Receivers consuming the queue in parallel (each on an executor).
        message_handler : callable
            fn(Delivery) -> record, run on the executor; default: the body as UTF-8 text.
        block_size : int
            Deliveries per stored block (1-65535); also the channel's prefetch count.
        block_interval : float
            Seconds after its first delivery that a block is stored even if not full
            (at most 180, a tenth of the broker's 30-minute consumer timeout).
        id_header : str, optional
            "message_id" (the AMQP property) or a header name: a message whose id was seen
            within dedupe_window seconds is dropped, across all receivers. The ids are
            state, in the checkpoints when there is a checkpoint directory (so a restarted
            driver still knows them). Messages without the id pass through at-least-once.
        dedupe_window : float
            Seconds an id is remembered (default 600), in checkpointed state.

        Raises
        ------
        ConfigError
            A setting is invalid; the message names it.
        """
        settings = RabbitMQSettings(
            host,
            port,
            queue,
            virtual_host,
            username,
            password,
            password_file,
            password_env,
            ca_file,
            declare_queue,
            exchange,
            routing_key,
        )
        return _rabbitmq_stream(
            self.env,
            settings,
            receivers=receivers,
            message_handler=message_handler,
            block_size=block_size,
            block_interval=block_interval,
            id_header=id_header,
            dedupe_window=dedupe_window,
        )

    def flume_stream(self, host: str, port: int) -> DStream[tuple[dict[str, str], bytes]]:
        """Events a Flume agent's Thrift sink sends to host:port: (headers, body) pairs.

        The receiver listens on host:port on the executor hosting it and answers a batch
        OK only once its events are stored (on two executors, and in the write-ahead log
        when it is on); otherwise the agent's channel transaction rolls back and the sink
        sends the batch again: at-least-once. Point the agent's Thrift sink
        (type = thrift, hostname, port, batch-size) at this address; see the README.

        Raises
        ------
        ConfigError
            port is not a whole number from 1 to 65535.
        """
        require(
            isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535,
            "port",
            port,
            "a whole number from 1 to 65535",
        )
        return ReceiverInputDStream(self.env, FlumeReceiver(host, port))

    def receiver_stream(self, receiver: Receiver) -> DStream:
        """The records `receiver` stores, received on one executor (Spark's receiverStream).

        Raises
        ------
        ConfigError
            receiver is not a kubestream.Receiver instance.
        """
        require(isinstance(receiver, Receiver), "receiver", receiver, "a Receiver instance")
        return ReceiverInputDStream(self.env, receiver)

    def union(self, *streams: DStream[T]) -> DStream[T]:
        """Each batch's records of all `streams`.

        Raises
        ------
        ConfigError
            No stream is given, an argument is not a DStream, or the slides differ.
        """
        return UnionDStream(self.env, list(streams))

    def transform(self, streams: Sequence[DStream[Any]], fn: Callable[..., RDD[U]]) -> DStream[U]:
        """A stream of fn([rdd of each stream]), or fn(batch_time_ms, rdds), per batch.

        As DStream.transform, over several streams: fn gets their RDDs of the batch
        in the order of `streams` (an empty RDD for a stream with none then) and
        runs on the driver.

        Raises
        ------
        ConfigError
            streams is empty or holds something other than a DStream.
        """
        streams = list(streams)
        require(streams, "streams", streams, "at least one DStream")
        for stream in streams:
            require(isinstance(stream, DStream), "each of streams", stream, "a DStream")
        with_time = arity(fn) >= 2
        return TransformedDStream(streams, lambda t, rdds: fn(t, rdds) if with_time else fn(rdds))

    def _batch_completed(self, info: BatchInfo) -> None:
        self._generator.batch_completed(info)

    def add_streaming_listener(self, listener: StreamingListener) -> None:
        """Call `listener`'s hooks on batch and receiver events, on the driver."""
        self.listeners.append(listener)

    def _receiver_status(self, executor_id: str, status: ReceiverStatus) -> None:
        """Receiver events from the executors, to the StreamingListeners' receiver hooks."""
        for listener in list(self.listeners):
            try:
                if status.state == "started":
                    listener.on_receiver_started(status.stream_id, executor_id)
                elif status.state == "error":
                    listener.on_receiver_error(status.stream_id, status.message)
                elif status.state == "stopped":
                    listener.on_receiver_stopped(status.stream_id)
            except USER_CODE_ERRORS:
                log.exception("listener %s failed on a receiver event", type(listener).__name__)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start receiving and processing; returns at once (see await_termination).

        Resumes from the checkpoint directory when it holds a checkpoint.

        Raises
        ------
        ConfigError
            The context was started before, no output operation is registered, the
            write-ahead log is on without a checkpoint directory, or the checkpoint
            was written by a different graph or batch interval.
        """
        if self.state is not StreamingContextState.INITIALIZED:
            raise ConfigError(
                f"a StreamingContext can be started once; this one is {self.state.value}"
            )
        self.graph.validate()
        for stream in self.graph.streams:
            stream.remember(self._remember_ms)
        if self.write_ahead_log:
            if self.checkpoint_dir is None:
                raise ConfigError("the write-ahead log lives in the checkpoint directory: set one")
            self.receiver_tracker.wal_dir = os.path.join(self.checkpoint_dir, WAL_DIR)
        resume = None
        if self._checkpointer is not None:
            self._checkpointer.prepare()
            resume = self._checkpointer.recover()
        if resume is None:
            first = first_batch_time(self.clock.now() * 1000, self.batch_interval_ms)
            self.graph.zero_time = first - self.batch_interval_ms
        else:
            first = resume
        for stream in self.graph.inputs:
            stream.start()
        self._start_flow_control()
        if self.write_ahead_log:
            self.receiver_tracker.adopt_orphans()
        if self._checkpointer is not None and resume is None:
            self._checkpointer.started_fresh()
        self.engine.add_executor_listener(self.receiver_tracker)
        self.receiver_tracker.start()
        self._scheduler.start()
        self._generator.start(first)
        self.state = StreamingContextState.ACTIVE
        with _ACTIVE_LOCK:
            _ACTIVE.append(self)
        log.info(
            "streaming started: batch interval %d ms, first batch at %d",
            self.batch_interval_ms,
            first,
        )

    def _start_flow_control(self) -> None:
        """Cap each rate-limitable input at max_rate and, with backpressure, at a PID estimate."""
        for stream in self.graph.inputs:
            if not stream.supports_rate_limit:
                if self.backpressure or self.max_rate is not None:
                    log.info("input stream %d (%s) has no rate limit", stream.id, stream.describe())
                continue
            stream.max_rate = self.max_rate
            if self.backpressure:
                self.add_streaming_listener(
                    RateController(stream, PIDRateEstimator(self.batch_interval))
                )
            stream.rate_limit_changed()

    def stop(
        self, stop_engine: bool = True, graceful: bool = False, timeout: float | None = None
    ) -> None:
        """Stop generating batches and receiving; stopping twice does nothing.

        Parameters
        ----------
        stop_engine : bool
            Also stop the in-process executors this context started.
        graceful : bool
            First stop receivers and process every record already received.
        timeout : float, optional
            Seconds a graceful stop waits; default: graceful_timeout.
        """
        if self.state is StreamingContextState.STOPPED:
            return
        if self.state is StreamingContextState.ACTIVE:
            if graceful:
                self._stop_gracefully(timeout or self.graceful_timeout)
            self._generator.stop()
            self._scheduler.stop(
                abort=lambda: self.engine.task_scheduler.abort_all("streaming context stopped")
            )
            for stream in self.graph.inputs:
                stream.stop()
            if not graceful:
                self.receiver_tracker.stop_receivers(timeout=1.0)
        self.engine.remove_executor_listener(self.receiver_tracker)
        if stop_engine and self._own_executors is not None:
            self._own_executors.stop()
        # This process's connector clients: the driver's, and in-process executors'.
        resources.close_all()
        self.state = StreamingContextState.STOPPED
        with _ACTIVE_LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        self._terminated.set()
        log.info("streaming stopped")

    def _stop_gracefully(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.receiver_tracker.stop_receivers(timeout=timeout / 2)
        while self.receiver_tracker.has_unallocated_blocks() and time.monotonic() < deadline:
            time.sleep(min(0.05, self.batch_interval / 4))
        self._generator.stop()
        if not self._scheduler.wait_idle(max(0.0, deadline - time.monotonic())):
            log.warning("graceful stop timed out after %.1f s with batches pending", timeout)
            return
        done = [b for b in self._scheduler.batches if b.completed]
        if done:
            self._generator.final_checkpoint(done[-1])

    def await_termination(self, timeout: float | None = None) -> bool:
        """Wait until the context stops, at most `timeout` seconds (None: forever).

        Returns True once stopped, False on timeout.

        Raises
        ------
        JobFailedError
            A batch failed and the policy reports failures ("report", the default:
            raised as soon as it fails, while later batches go on running; "stop":
            after stopping the context). Every later call raises it again, as in
            Spark; the message names the batch and carries the failure.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._terminated.is_set():
            if self._scheduler.failed_stop.is_set():
                self.stop(stop_engine=True)
                break
            if self._scheduler.failure is not None:
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._terminated.wait(0.1 if remaining is None else min(0.1, remaining))
        if self._scheduler.failure is not None:
            raise JobFailedError(str(self._scheduler.failure))
        return True

    def await_termination_or_timeout(self, timeout: float) -> bool:
        """Wait at most `timeout` seconds for the context to stop: True if it did (Spark's
        awaitTerminationOrTimeout). Raises JobFailedError as await_termination does.

        Raises
        ------
        ConfigError
            timeout is not a number of seconds of at least 0.
        """
        require(_is_number(timeout) and timeout >= 0, "timeout", timeout, "seconds, at least 0")
        return self.await_termination(timeout)

    # --- batches --------------------------------------------------------------------------
    @property
    def batches(self) -> list[BatchInfo]:
        """Every batch generated so far, oldest first."""
        return list(self._scheduler.batches)

    def wait_for_batch(self, batch_time: int, timeout: float) -> BatchInfo:
        """Block until the batch of `batch_time` (ms since the epoch) completed, at most
        `timeout` seconds (for tests and kubestream.testing).

        Raises
        ------
        TimeoutError
            The batch did not complete in time.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for info in self.batches:
                if info.batch_time == batch_time and info.completed:
                    return info
            time.sleep(0.005)
        raise TimeoutError(f"batch {batch_time} did not complete in {timeout} s")


_ACTIVE: list[StreamingContext] = []
_ACTIVE_LOCK = threading.Lock()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
