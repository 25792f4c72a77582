"""Every runtime setting, declared once.

A `Setting` carries its name, type, default, bounds, unit, help and the commands
that read it (`Reader`). From the declaration come each command's flags and its
``KUBESTREAM_*`` variable (`add_arguments`), the parsed values (`Values`, read
as ``values[BATCH_INTERVAL]``, typed by the declaration, as Flink's
``Configuration.get(ConfigOption)``), the bounds `StreamingContext` checks, and,
in the operator, each pod's environment and the spec's bounds.

Adding a setting: declare it here and add it to `RUNTIME`; read it where it is
used. Its flag, variable and help follow; the operator's contract test then asks
whether the operator sets it on the pods whose command reads it.
"""

from __future__ import annotations

import argparse
import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

ENV_PREFIX = "KUBESTREAM_"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class Reader(enum.Flag):
    """The commands that read a setting. ``RUN`` is local mode (driver and executor
    processes on this machine); ``DRIVER`` and ``EXECUTOR`` are the pod entry points;
    ``OPERATOR`` is `kubestream operator`, which declares its own settings the same way."""

    RUN = enum.auto()
    DRIVER = enum.auto()
    EXECUTOR = enum.auto()
    DECOMMISSION = enum.auto()
    OPERATOR = enum.auto()


DRIVER_SIDE = Reader.RUN | Reader.DRIVER
EVERY_COMMAND = Reader.RUN | Reader.DRIVER | Reader.EXECUTOR | Reader.DECOMMISSION


@dataclass(frozen=True, eq=False)
class Setting(Generic[T]):
    """One setting. ``kind`` is its Python type (bool, int, float or str); ``default`` is
    None when unset means "not set" (the runtime then derives a value, or does without).

    ``minimum``/``maximum`` are inclusive bounds in ``unit``; ``exclusive_minimum`` makes
    the lower bound strict ("greater than 0"). A setting with ``flag=False`` is read only
    from its variable (a key, never on a command line); a ``secret`` one is never written
    as a literal value (the operator passes it from a Secret by reference).
    """

    name: str
    kind: type
    default: T
    help: str
    read_by: Reader
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    flag: bool = True
    secret: bool = False
    prefix: str = ENV_PREFIX

    @property
    def env(self) -> str:
        """The environment variable, e.g. ``KUBESTREAM_BATCH_INTERVAL``."""
        return self.prefix + self.name.upper()

    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--batch-interval``."""
        return "--" + self.name.replace("_", "-")

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        return self.minimum, self.maximum

    def parse(self, text: str) -> T:
        """The value of a flag or variable; ValueError says what was expected."""
        value: object
        if self.kind is bool:
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError(f"expected true or false, got {text!r}")
            value = word in _TRUE
        elif self.kind is int:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
        elif self.kind is float:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number{self._of_unit()}, got {text!r}") from None
        else:
            value = text
        return self.check(cast(T, value))

    def check(self, value: T) -> T:
        """``value`` itself when of the setting's type, within its bounds and choices
        (None only for a setting whose default is None); ValueError otherwise."""
        if value is None and self.default is None:
            return value
        if not self._of_kind(value):
            raise ValueError(f"must be {self._kind_words()}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = self.minimum, self.maximum
            too_low = low is not None and (value <= low if self.exclusive_minimum else value < low)
            if too_low or (high is not None and value > high):
                raise ValueError(f"must be {self.describe_bounds()}, got {value:g}")
        return value

    def _of_kind(self, value: object) -> bool:
        if self.kind is float:
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, self.kind)

    def _kind_words(self) -> str:
        words = {bool: "true or false", int: "a whole number", str: "text"}
        return words.get(self.kind, f"a number{self._of_unit()}")

    def format(self, value: T) -> str:
        """The variable's text for ``value``: what `parse` reads back as ``value``."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            short = f"{value:g}"
            return short if float(short) == value else repr(value)
        return str(value)

    def describe(self) -> str:
        """The flag's help: the declaration's text and its variable (the unit is the
        flag's metavar, e.g. ``--batch-interval SECONDS``)."""
        return f"{self.help} [env: {self.env}]"

    @property
    def metavar(self) -> str | None:
        return self.unit.upper().replace(" ", "_") if self.unit else None

    def describe_bounds(self) -> str:
        """The bounds in words: "between 0.1 and 3600 seconds", "greater than 0 seconds"."""
        low, high = self.minimum, self.maximum
        unit = f" {self.unit}" if self.unit else ""
        if low is not None and high is not None and not self.exclusive_minimum:
            return f"between {low:g} and {high:g}{unit}"
        words = []
        if low is not None:
            words.append(f"{'greater than' if self.exclusive_minimum else 'at least'} {low:g}")
        if high is not None:
            words.append(f"at most {high:g}")
        return " and ".join(words) + unit

    def _of_unit(self) -> str:
        return f" of {self.unit}" if self.unit else ""


# --- every command -------------------------------------------------------------------------
LOG_LEVEL = Setting[str](
    "log_level",
    str,
    "INFO",
    "logging level",
    EVERY_COMMAND | Reader.OPERATOR,
    choices=("DEBUG", "INFO", "WARNING", "ERROR"),
)
LOG_FORMAT = Setting[str](
    "log_format",
    str,
    "text",
    "text for people, json for one JSON object a line with job, batch and executor fields",
    EVERY_COMMAND,
    choices=("text", "json"),
)
JOB = Setting[str | None](
    "job",
    str,
    None,
    "the job's name, in logs and the UI (default: the application's name)",
    EVERY_COMMAND,
)
CURVE_PUBLIC_KEY = Setting[str | None](
    "curve_public_key",
    str,
    None,
    "the job's CURVE public key (Z85); `kubestream run` makes a key pair when unset",
    EVERY_COMMAND,
    flag=False,
)
CURVE_SECRET_KEY = Setting[str | None](
    "curve_secret_key",
    str,
    None,
    "the job's CURVE secret key (Z85), never logged",
    EVERY_COMMAND,
    flag=False,
    secret=True,
)
STATE_KEY = Setting[str | None](
    "state_key",
    str,
    None,
    "key (hex) that authenticates checkpoints and write-ahead log records; unset: derived "
    "from the CURVE secret key, or, without one, from ~/.config/kubestream/state-key",
    EVERY_COMMAND,
    flag=False,
    secret=True,
)

# --- the driver ----------------------------------------------------------------------------
APP = Setting[str | None](
    "app", str, None, "path/to/app.py[:function] or package.module[:function]", Reader.DRIVER
)
APP_ARGS = Setting[str | None](
    "app_args", str, None, "the application's arguments, shell-quoted", Reader.DRIVER
)
CONFIG = Setting[str | None](
    "config",
    str,
    None,
    "directory of application settings, one file per key holding its value (on Kubernetes "
    "the job's spec.configuration); the application reads them as ssc.conf",
    DRIVER_SIDE,
)
HOST = Setting[str]("host", str, "0.0.0.0", "address to listen on", Reader.DRIVER)
DRIVER_PORT = Setting[int](
    "driver_port",
    int,
    7077,
    "the driver's ZeroMQ port, which executors connect to",
    Reader.DRIVER | Reader.EXECUTOR,
    minimum=0,
    maximum=65535,
)
UI_PORT = Setting[int](
    "ui_port",
    int,
    4040,
    "port of the web UI, status JSON and /metrics (0: any free port; "
    "when taken, the next ones are tried)",
    DRIVER_SIDE,
    minimum=0,
    maximum=65535,
)
UI_IDLE_TIMEOUT = Setting[float](
    "ui_idle_timeout",
    float,
    30.0,
    "a connection to the UI port idle this long is closed",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.1,
    maximum=3600,
)
UI_MAX_CONNECTIONS = Setting[int](
    "ui_max_connections",
    int,
    64,
    "connections the UI port serves at once; more are answered 503",
    DRIVER_SIDE,
    minimum=1,
    maximum=10_000,
)
UI_READ_ACCESS = Setting[str](
    "ui_read_access",
    str,
    "open",
    "who may read the UI port (page, status, /metrics) and the executors' /metrics: open to "
    "anyone who reaches it, or token: only with the job's read token (Spark's view ACL)",
    DRIVER_SIDE | Reader.EXECUTOR,
    choices=("open", "token"),
)
UI_CHANGE_ACCESS = Setting[str](
    "ui_change_access",
    str,
    "token",
    "who may change the job through the UI port (drain an executor): token: only with the "
    "job's change token (Spark's modify ACL), or open",
    DRIVER_SIDE,
    choices=("token", "open"),
)
UI_SCRAPE_TOKEN = Setting[str | None](
    "ui_scrape_token",
    str,
    None,
    "a further token that may read /metrics only, the driver's and the executors' (a "
    "cluster's Prometheus), never logged",
    DRIVER_SIDE | Reader.EXECUTOR,
    flag=False,
    secret=True,
)
UI_SCRAPE_TOKEN_FILE = Setting[str | None](
    "ui_scrape_token_file",
    str,
    None,
    "a file holding a further scrape token, read again when it changes (a mounted Secret: "
    "a rotated token is taken without a restart)",
    DRIVER_SIDE | Reader.EXECUTOR,
)
UI_TOKEN_GENERATION_FILE = Setting[str | None](
    "ui_token_generation_file",
    str,
    None,
    "a file holding the job's token generation (a non-negative integer; none: 0), which the "
    "read and change tokens derive from with the CURVE secret key; read again when it "
    "changes (a mounted Secret: rotated tokens are taken without a restart)",
    DRIVER_SIDE | Reader.EXECUTOR | Reader.DECOMMISSION,
)
UI_TLS_CERT = Setting[str | None](
    "ui_tls_cert",
    str,
    None,
    "PEM certificate chain of the UI port; with --ui-tls-key the port speaks HTTPS only",
    DRIVER_SIDE,
)
UI_TLS_KEY = Setting[str | None](
    "ui_tls_key", str, None, "PEM private key of --ui-tls-cert", DRIVER_SIDE
)
# At least 0.1 s: a batch costs a round trip to every executor and a checkpoint write,
# so shorter batches spend more time scheduling than processing (the CRD's bound).
BATCH_INTERVAL = Setting[float](
    "batch_interval",
    float,
    1.0,
    "length of one micro-batch",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.1,
    maximum=3600,
)
CHECKPOINT = Setting[str | None](
    "checkpoint",
    str,
    None,
    "checkpoint directory (a job started on one resumes from it)",
    DRIVER_SIDE,
)
CHECKPOINT_INTERVAL = Setting[float | None](
    "checkpoint_interval",
    float,
    None,
    "time between data checkpoints of state (default: a multiple of the slides, at least 10 s)",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.1,
    maximum=86400,
)
WRITE_AHEAD_LOG = Setting[bool](
    "write_ahead_log",
    bool,
    False,
    "write received blocks under the checkpoint directory before a reliable receiver "
    "acknowledges its source",
    DRIVER_SIDE,
)
BACKPRESSURE = Setting[bool](
    "backpressure",
    bool,
    False,
    "cap receivers and rate-limitable direct sources at the rate the job keeps up with "
    "(a PID estimate, as Spark's backpressure)",
    DRIVER_SIDE,
)
# Whole records per second, as Spark's spark.streaming.receiver.maxRate.
MAX_RATE = Setting[int | None](
    "max_rate",
    int,
    None,
    "most records each receiver or rate-limitable direct source may read per second",
    DRIVER_SIDE,
    unit="records per second",
    minimum=1,
    maximum=1_000_000_000,
)
BLOCK_INTERVAL = Setting[float | None](
    "block_interval",
    float,
    None,
    "how often a receiver cuts what it received into a block; a batch's blocks are read as "
    "one run of near-equal length per core (default: the longest interval up to 0.2 s, Spark's "
    "spark.streaming.blockInterval, that divides the batch interval into at least two "
    "blocks, so every batch gets as many)",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.01,
    maximum=60,
)
GRACEFUL_TIMEOUT = Setting[float | None](
    "graceful_timeout",
    float,
    None,
    "time a graceful stop may take (default: 10 batches)",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)
ON_BATCH_FAILURE = Setting[str](
    "on_batch_failure",
    str,
    "report",
    "what a failed batch does to the job: report (Spark's default): later batches run, "
    "await_termination raises the first failure, and the driver exits 1 at the end unless "
    "stopped by a signal; "
    "continue: later batches run, the failure is only logged and recorded; "
    "stop: the job stops and the driver exits 1",
    DRIVER_SIDE,
    choices=("report", "continue", "stop"),
)
HEARTBEAT_TIMEOUT = Setting[float](
    "heartbeat_timeout",
    float,
    5.0,
    "executor silence before it is declared lost",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)
# Spark reports a task over spark.speculation.task.duration.threshold by speculating on
# it; kubestream reports it (a Python thread cannot be stopped, so nothing is killed).
TASK_DURATION_THRESHOLD = Setting[float](
    "task_duration_threshold",
    float,
    120.0,
    "a task running longer than this is reported: logged once, counted "
    "(kubestream_slow_tasks_total) and listed in the status document's slow_tasks",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.1,
    maximum=86400,
)
STALL_TIMEOUT = Setting[float](
    "stall_timeout",
    float,
    300.0,
    "a running batch in which no task and no output operation finished for this long is "
    "stalled: logged, in the status document's stall, kubestream_batch_stalled is 1",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0.1,
    maximum=86400,
)
DURATION = Setting[float | None](
    "duration",
    float,
    None,
    "stop gracefully after this long",
    DRIVER_SIDE,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)
EXECUTORS = Setting[int]("executors", int, 2, "executor processes to start", Reader.RUN, minimum=1)

# --- executors -----------------------------------------------------------------------------
DRIVER_HOST = Setting[str](
    "driver_host", str, "127.0.0.1", "the driver's host name or address", Reader.EXECUTOR
)
EXECUTOR_ID = Setting[str | None](
    "executor_id",
    str,
    None,
    "this executor's unique id (default: the host name)",
    Reader.EXECUTOR,
)
ADVERTISE_HOST = Setting[str](
    "advertise_host",
    str,
    "127.0.0.1",
    "address peers use to fetch blocks from this executor",
    Reader.EXECUTOR,
)
BLOCK_HOST = Setting[str](
    "block_host", str, "0.0.0.0", "address the block server listens on", Reader.EXECUTOR
)
BLOCK_PORT = Setting[int](
    "block_port",
    int,
    7078,
    "port of the block server (0: any free port)",
    Reader.EXECUTOR,
    minimum=0,
    maximum=65535,
)
METRICS_PORT = Setting[int](
    "metrics_port",
    int,
    9090,
    "port of this executor's /metrics, on the block host (0: any free port)",
    Reader.EXECUTOR,
    minimum=0,
    maximum=65535,
)
CORES = Setting[int]("cores", int, 1, "tasks run at once", Reader.EXECUTOR, minimum=1)
KAFKA_CONSUMER_POOL_SIZE = Setting[int](
    "kafka_consumer_pool_size",
    int,
    64,
    "idle Kafka consumers an executor keeps assigned between batches, one per topic-partition "
    "it reads (each prefetches up to 8 MB); beyond it the least recently used are closed",
    Reader.RUN | Reader.EXECUTOR,
    unit="consumers",
    minimum=1,
    maximum=10000,
)
HEARTBEAT_INTERVAL = Setting[float](
    "heartbeat_interval",
    float,
    0.5,
    "time between heartbeats",
    Reader.EXECUTOR,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)
DRIVER_TIMEOUT = Setting[float](
    "driver_timeout",
    float,
    60.0,
    "time without the driver before exiting",
    Reader.EXECUTOR,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)
PARENT_PID = Setting[int | None](
    "parent_pid", int, None, "exit when this parent process is gone (local mode)", Reader.EXECUTOR
)

# --- decommission --------------------------------------------------------------------------
URL = Setting[str](
    "url",
    str,
    f"http://127.0.0.1:{UI_PORT.default}",
    "the driver's UI/API address",
    Reader.DECOMMISSION,
)
TIMEOUT = Setting[float](
    "timeout",
    float,
    300.0,
    "time to wait for the drain",
    Reader.DECOMMISSION,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
)

RUNTIME: tuple[Setting[Any], ...] = (
    EXECUTORS,
    DURATION,
    APP,
    APP_ARGS,
    HOST,
    DRIVER_HOST,
    DRIVER_PORT,
    EXECUTOR_ID,
    ADVERTISE_HOST,
    BLOCK_HOST,
    BLOCK_PORT,
    METRICS_PORT,
    CORES,
    KAFKA_CONSUMER_POOL_SIZE,
    HEARTBEAT_INTERVAL,
    DRIVER_TIMEOUT,
    PARENT_PID,
    UI_PORT,
    UI_IDLE_TIMEOUT,
    UI_MAX_CONNECTIONS,
    UI_READ_ACCESS,
    UI_CHANGE_ACCESS,
    UI_SCRAPE_TOKEN,
    UI_SCRAPE_TOKEN_FILE,
    UI_TOKEN_GENERATION_FILE,
    UI_TLS_CERT,
    UI_TLS_KEY,
    BATCH_INTERVAL,
    CHECKPOINT,
    CHECKPOINT_INTERVAL,
    WRITE_AHEAD_LOG,
    BACKPRESSURE,
    MAX_RATE,
    BLOCK_INTERVAL,
    GRACEFUL_TIMEOUT,
    ON_BATCH_FAILURE,
    HEARTBEAT_TIMEOUT,
    TASK_DURATION_THRESHOLD,
    STALL_TIMEOUT,
    CONFIG,
    URL,
    TIMEOUT,
    LOG_LEVEL,
    LOG_FORMAT,
    JOB,
    CURVE_PUBLIC_KEY,
    CURVE_SECRET_KEY,
    STATE_KEY,
)
"""Every runtime setting, in the order flags appear in help."""


def read_by(reader: Reader, declared: Iterable[Setting[Any]] = RUNTIME) -> tuple[Setting[Any], ...]:
    """The settings ``reader`` reads, in declaration order."""
    return tuple(s for s in declared if reader & s.read_by)


def _argument_type(setting: Setting[Any]) -> Any:
    def convert(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (flag or {setting.env})") from None

    convert.__name__ = setting.name  # argparse names the type in some messages
    return convert


def _bool_or_text(setting: Setting[Any], raw: str) -> Any:
    """The variable's boolean, or its text for `Values.parsed` to refuse."""
    try:
        return setting.parse(raw)
    except ValueError:
        return raw


def add_arguments(
    parser: argparse.ArgumentParser,
    declared: Iterable[Setting[Any]],
    environ: Mapping[str, str] | None = None,
) -> None:
    """One flag per declared setting, defaulting to its variable, else its declared default.

    A variable's text goes through the same parsing as the flag's, so a bad value in
    either is refused with the flag's and the variable's names. Booleans get
    ``--name``/``--no-name``; a bad boolean variable is refused by `Values.parsed`.
    """
    env = os.environ if environ is None else environ
    for setting in declared:
        if not setting.flag:
            continue
        raw = env.get(setting.env)
        if setting.kind is bool:
            parser.add_argument(
                setting.option,
                action=argparse.BooleanOptionalAction,
                default=setting.default if raw is None else _bool_or_text(setting, raw),
                help=setting.describe(),
            )
            continue
        parser.add_argument(
            setting.option,
            type=_argument_type(setting),
            default=setting.default if raw is None else raw,
            choices=setting.choices or None,
            help=setting.describe(),
            metavar=setting.metavar,
        )


def arguments(values: Iterable[tuple[Setting[Any], Any]]) -> list[str]:
    """The flags that set ``values``, as `add_arguments` reads them: for a process this
    one starts (local executors), as the operator writes variables for a pod."""
    argv: list[str] = []
    for setting, value in values:
        setting.check(value)
        if setting.kind is bool:
            argv.append(setting.option if value else "--no-" + setting.option[2:])
        else:
            argv += [setting.option, setting.format(value)]
    return argv


@dataclass(frozen=True)
class Values:
    """The parsed values of one command's settings; ``values[SETTING]`` is typed by the
    declaration. Reading a setting the command does not read is a KeyError."""

    by_name: Mapping[str, object]

    def __getitem__(self, setting: Setting[T]) -> T:
        return cast(T, self.by_name[setting.name])

    @classmethod
    def parsed(
        cls,
        args: argparse.Namespace,
        declared: Iterable[Setting[Any]],
        environ: Mapping[str, str] | None = None,
    ) -> Values:
        """From ``args`` (flags) and ``environ`` (settings that have no flag); raises
        ValueError naming the variable of a value that does not parse."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for setting in declared:
            if setting.flag:
                value = getattr(args, setting.name)
            else:
                value = env.get(setting.env) or setting.default
            if isinstance(value, str) and setting.kind is not str:
                try:
                    value = setting.parse(value)
                except ValueError as exc:
                    raise ValueError(f"{setting.env}: {exc}") from None
            values[setting.name] = value
        return cls(MappingProxyType(values))


def read_config_dir(directory: str) -> dict[str, str]:
    """The application settings in ``directory`` (the `CONFIG` setting): one file per key,
    holding its value as UTF-8 text, the layout of a mounted ConfigMap. Names starting
    with ``..`` (the ConfigMap's own bookkeeping) and subdirectories are skipped.
    Raises OSError when the directory cannot be read, UnicodeDecodeError on a binary file."""
    found: dict[str, str] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith("..") and entry.is_file():
                with open(entry.path, encoding="utf-8") as file:
                    found[entry.name] = file.read()
    return dict(sorted(found.items()))
