"""The driver process: load the application, build its graph, run until told to stop.

Shared by `kubestream run` (which also starts executor processes here) and
`kubestream driver` (executors are pods that connect to it). SIGTERM or Ctrl-C
stops gracefully; a second one stops at once.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from kubestream import settings
from kubestream.core.engine import Engine
from kubestream.core.protocol import Shutdown
from kubestream.driver.api_auth import Access
from kubestream.driver.app import load_app
from kubestream.driver.batch_logs import BatchLogContext
from kubestream.driver.decommission import Decommissioner
from kubestream.driver.endpoint import DriverEndpoint
from kubestream.driver.local_cluster import LocalExecutorProcesses
from kubestream.driver.metrics import (
    DriverMetrics,
    HealthCollector,
    InputsCollector,
    OutputsCollector,
)
from kubestream.driver.progress import ProgressMonitor
from kubestream.driver.status import context_status
from kubestream.driver.ui.server import Actions, UIServer, tls_context
from kubestream.errors import ConfigError, JobFailedError
from kubestream.settings import DRIVER_PORT, Values
from kubestream.streaming.context import StreamingContext, StreamingContextState
from kubestream.transport import CurveKeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriverOptions:
    """What the driver runs: the application (``path/to/app.py[:function]`` or
    ``module[:function]``) and its arguments, the job's key pair, where it listens, the
    job's name, and every driver setting as parsed from flags and variables."""

    app: str
    keys: CurveKeys
    settings: Values
    app_args: list[str] = field(default_factory=list)
    host: str = "0.0.0.0"
    port: int = DRIVER_PORT.default
    job: str = ""


class _StopNow(BaseException):
    """Raised by a second stop signal, to cut a graceful stop short."""


class _Signals:
    """SIGTERM and SIGINT: the first asks for a graceful stop, a second one while batches run
    cuts it short. Installed before start-up, so a stop during it ends the job cleanly once
    it has started, instead of killing the driver with its executors left to notice."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.running = False

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            if self.running:
                raise _StopNow
            log.warning("received %s again: still starting up", signal.Signals(signum).name)
            return
        log.warning(
            "received %s: stopping gracefully (again to stop at once)", signal.Signals(signum).name
        )
        self.requested.set()


def run_driver(options: DriverOptions, local_executors: int = 0) -> int:
    signals = _Signals()
    signals.install()
    engine = Engine()
    endpoint = DriverEndpoint(
        engine,
        options.keys,
        options.host,
        options.port,
        heartbeat_timeout=options.settings[settings.HEARTBEAT_TIMEOUT],
    )
    values = options.settings
    executors = None
    ui = None
    progress = None
    try:
        build = load_app(options.app)  # first: a mistake in it is reported before executors log
        if local_executors:
            executors = LocalExecutorProcesses(
                local_executors,
                endpoint.port,
                options.keys,
                values[settings.LOG_LEVEL],
                log_format=values[settings.LOG_FORMAT],
                read_access=values[settings.UI_READ_ACCESS],
                scrape_token_file=values[settings.UI_SCRAPE_TOKEN_FILE],
                generation_file=values[settings.UI_TOKEN_GENERATION_FILE],
                executor_settings=[
                    (settings.KAFKA_CONSUMER_POOL_SIZE, values[settings.KAFKA_CONSUMER_POOL_SIZE])
                ],
            )
        ssc = StreamingContext(
            values[settings.BATCH_INTERVAL],
            values[settings.CHECKPOINT],
            engine=engine,
            on_batch_failure=values[settings.ON_BATCH_FAILURE],
            graceful_timeout=values[settings.GRACEFUL_TIMEOUT],
            checkpoint_interval=values[settings.CHECKPOINT_INTERVAL],
            write_ahead_log=values[settings.WRITE_AHEAD_LOG],
            backpressure=values[settings.BACKPRESSURE],
            max_rate=values[settings.MAX_RATE],
            block_interval=values[settings.BLOCK_INTERVAL],
            conf=_application_conf(values[settings.CONFIG]),
        )
        ui, progress = _start_ui(ssc, options)
        build(ssc, list(options.app_args))
        if local_executors and not engine.wait_for_executors(local_executors, timeout=30):
            raise ConfigError(
                f"only {len(engine.executor_ids())} of {local_executors} executors "
                "registered in 30 s"
            )
        return _run(ssc, options, signals)
    finally:
        engine.broadcast(Shutdown("driver stopping"))
        if executors is not None:
            executors.stop()
        endpoint.close()
        if ui is not None:
            ui.close()
        if progress is not None:
            progress.stop()


def _application_conf(directory: str | None) -> dict[str, str]:
    try:
        return settings.read_config_dir(directory) if directory else {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{settings.CONFIG.option} ({settings.CONFIG.env}): {exc}") from None


def _start_ui(ssc: StreamingContext, options: DriverOptions) -> tuple[UIServer, ProgressMonitor]:
    """Metrics, batch-time log fields, the progress monitor (started) and the web UI;
    prints the page's address."""
    ssc.add_streaming_listener(BatchLogContext())
    registry = CollectorRegistry()
    ssc.add_streaming_listener(
        DriverMetrics(registry, ssc.batch_interval, ssc.engine, ssc.receiver_tracker)
    )
    registry.register(InputsCollector(ssc.graph))
    registry.register(OutputsCollector(ssc.graph))
    values = options.settings
    progress = ProgressMonitor(
        ssc.engine.task_scheduler,
        values[settings.STALL_TIMEOUT],
        values[settings.TASK_DURATION_THRESHOLD],
    )
    ssc.add_streaming_listener(progress)
    registry.register(HealthCollector(progress, ssc.checkpoint_health))
    job = options.job or options.app
    decommissioner = Decommissioner(ssc.engine, ssc.receiver_tracker)

    def status(limit: int) -> dict[str, Any]:
        return context_status(ssc, job, limit, decommissioner.outcomes, progress)

    access = Access.of_job(
        options.keys.secret,
        read_open=values[settings.UI_READ_ACCESS] == "open",
        change_open=values[settings.UI_CHANGE_ACCESS] == "open",
        scrape=values[settings.UI_SCRAPE_TOKEN],
        scrape_file=values[settings.UI_SCRAPE_TOKEN_FILE],
        generation_file=values[settings.UI_TOKEN_GENERATION_FILE],
    )
    ui = UIServer(
        status,
        registry,
        options.host,
        options.settings[settings.UI_PORT],
        Actions(decommissioner.start),
        idle_timeout=values[settings.UI_IDLE_TIMEOUT],
        max_connections=values[settings.UI_MAX_CONNECTIONS],
        access=access,
        tls=_tls(values),
    )
    progress.start()
    print(f"kubestream: Streaming UI at {ui.url()}", file=sys.stderr, flush=True)
    return ui, progress


def _tls(values: Values) -> ssl.SSLContext | None:
    cert, key = values[settings.UI_TLS_CERT], values[settings.UI_TLS_KEY]
    if (cert is None) != (key is None):
        raise ConfigError(
            f"{settings.UI_TLS_CERT.option} and {settings.UI_TLS_KEY.option} go together: "
            "give both for HTTPS, or neither"
        )
    return None if cert is None or key is None else tls_context(cert, key)


def _run(ssc: StreamingContext, options: DriverOptions, signals: _Signals) -> int:
    ssc.start()
    signals.running = True
    duration = options.settings[settings.DURATION]
    deadline = None if duration is None else time.monotonic() + duration
    failure: JobFailedError | None = None
    try:
        try:
            while not signals.requested.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if failure is not None:  # "report": later batches run until the job ends
                    if ssc.state is StreamingContextState.STOPPED:
                        break
                    signals.requested.wait(0.1)
                    continue
                try:
                    if ssc.await_termination(0.1):
                        break
                except JobFailedError as exc:
                    failure = exc
                    log.error("%s", exc)
                    if ssc.state is StreamingContextState.STOPPED:  # "stop"
                        break
                    log.error("later batches keep running (on_batch_failure=report)")
            ssc.stop(graceful=True)
        except _StopNow:
            log.warning("stopping at once")
            ssc.stop(graceful=False)
    except JobFailedError as exc:
        failure = failure or exc
    # A stop asked for by a signal ends cleanly: the failure was logged and recorded when it
    # happened, and a pod's exit status must not make the operator restart a stopped job.
    code = 1 if failure is not None and not signals.requested.is_set() else 0
    failed = [b for b in ssc.batches if b.failed]
    if failed:
        ran = [b for b in ssc.batches if b.completed or b.failed]
        log.warning("%d of %d batches that ran failed", len(failed), len(ran))
    return code
