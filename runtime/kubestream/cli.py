"""The `kubestream` command: run (local mode), driver and executor (pod entry points).

Every flag can also come from an environment variable, KUBESTREAM_<FLAG>, which
is how pods are configured. User mistakes end in one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from kubestream import logs
from kubestream.errors import ConfigError
from kubestream.streaming.scheduler.job_scheduler import ON_BATCH_FAILURE

ENV_PREFIX = "KUBESTREAM_"


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _flag(
    parser: argparse.ArgumentParser,
    flag: str,
    help: str,
    type: Callable[[str], Any] = str,
    default: Any = None,
    **kwargs: Any,
) -> None:
    env = _env_name(flag)
    parser.add_argument(
        flag,
        type=type,
        default=os.environ.get(env, default),
        help=f"{help} (env {env})",
        **kwargs,
    )


def _common(parser: argparse.ArgumentParser) -> None:
    _flag(
        parser,
        "--log-level",
        "logging level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    _flag(
        parser,
        "--log-format",
        "text for people, json for one JSON object a line with job, batch and executor fields",
        default="text",
        choices=list(logs.FORMATS),
    )
    _flag(parser, "--job", "the job's name, in logs and the UI (default: the application's name)")


def _driver_flags(parser: argparse.ArgumentParser) -> None:
    _flag(
        parser,
        "--ui-port",
        "port of the web UI, status JSON and /metrics (0: any free port; "
        "when taken, the next ones are tried)",
        _port,
        default="4040",
    )
    _flag(parser, "--batch-interval", "seconds per batch", _positive_float, default="1.0")
    _flag(parser, "--checkpoint", "checkpoint directory (a job started on one resumes from it)")
    _flag(
        parser,
        "--checkpoint-interval",
        "seconds between data checkpoints of state "
        "(default: a multiple of the slides, at least 10 s)",
        _positive_float,
    )
    parser.add_argument(
        "--write-ahead-log",
        action="store_true",
        default=_env_bool("WRITE_AHEAD_LOG"),
        help="write received blocks under the checkpoint directory before a reliable receiver "
        "acknowledges its source (env KUBESTREAM_WRITE_AHEAD_LOG)",
    )
    parser.add_argument(
        "--backpressure",
        action="store_true",
        default=_env_bool("BACKPRESSURE"),
        help="cap receivers and rate-limitable direct sources at the rate the job keeps up with "
        "(a PID estimate, as Spark's backpressure) (env KUBESTREAM_BACKPRESSURE)",
    )
    _flag(
        parser,
        "--max-rate",
        "records per second each receiver or rate-limitable direct source may read at most",
        _positive_float,
    )
    _flag(
        parser,
        "--graceful-timeout",
        "seconds a graceful stop may take (default: 10 batches)",
        _positive_float,
    )
    _flag(
        parser,
        "--on-batch-failure",
        "what a failed batch does to the job: "
        + "; ".join(f"{name}: {what}" for name, what in ON_BATCH_FAILURE.items())
        + " (with report and stop the driver exits with status 1 after a failed batch)",
        default="report",
        choices=list(ON_BATCH_FAILURE),
    )
    _flag(
        parser,
        "--heartbeat-timeout",
        "seconds of executor silence before it is declared lost",
        _positive_float,
        default="5",
    )


def _env_bool(name: str) -> bool:
    return os.environ.get(ENV_PREFIX + name, "").lower() in ("1", "true", "yes")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubestream", description="Micro-batch stream processing, locally or on Kubernetes."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run an application locally: driver plus N executor processes"
    )
    run.add_argument("app", help="path/to/app.py[:function] or package.module[:function]")
    _flag(run, "--executors", "executor processes to start", _count, default="2")
    _flag(run, "--duration", "stop gracefully after this many seconds", _positive_float)
    _driver_flags(run)
    _common(run)
    run.set_defaults(func=_cmd_run)

    driver = commands.add_parser("driver", help="run the driver of a job (pod entry point)")
    _flag(driver, "--app", "path/to/app.py[:function] or package.module[:function]")
    _flag(driver, "--app-args", "the application's arguments, shell-quoted")
    _flag(driver, "--host", "address to listen on", default="0.0.0.0")
    _flag(driver, "--driver-port", "ZeroMQ port executors connect to", _port, default="7077")
    _flag(driver, "--duration", "stop gracefully after this many seconds", _positive_float)
    _driver_flags(driver)
    _common(driver)
    driver.set_defaults(func=_cmd_driver)

    executor = commands.add_parser("executor", help="run an executor (pod entry point)")
    _flag(executor, "--driver-host", "the driver's host name or address", default="127.0.0.1")
    _flag(executor, "--driver-port", "the driver's ZeroMQ port", _port, default="7077")
    _flag(executor, "--executor-id", "this executor's unique id", default=None)
    _flag(
        executor,
        "--advertise-host",
        "address peers use to fetch blocks from this executor",
        default="127.0.0.1",
    )
    _flag(executor, "--block-host", "address the block server listens on", default="0.0.0.0")
    _flag(
        executor,
        "--block-port",
        "port of the block server (0: any free port)",
        _port,
        default="7078",
    )
    _flag(
        executor,
        "--metrics-port",
        "port of this executor's /metrics, on the block host (0: any free port)",
        _port,
        default="9090",
    )
    _flag(executor, "--cores", "tasks run at once", _count, default="1")
    _flag(
        executor,
        "--heartbeat-interval",
        "seconds between heartbeats",
        _positive_float,
        default="0.5",
    )
    _flag(
        executor,
        "--driver-timeout",
        "seconds without the driver before exiting",
        _positive_float,
        default="60",
    )
    _flag(executor, "--parent-pid", "exit when this parent process is gone (local mode)", int)
    _common(executor)
    executor.set_defaults(func=_cmd_executor)

    drain = commands.add_parser(
        "decommission",
        help="drain an executor of a running job through its driver's API, then let it exit",
    )
    drain.add_argument("executor_id", help="the executor's id (on Kubernetes, its pod name)")
    _flag(drain, "--url", "the driver's UI/API address", default="http://127.0.0.1:4040")
    _flag(drain, "--timeout", "seconds to wait for the drain", _positive_float, default="300")
    _common(drain)
    drain.set_defaults(func=_cmd_decommission)

    for plugin in entry_points(group="kubestream.commands"):
        plugin.load()(commands)
    return parser


def _keys_from_env(generate: bool) -> Any:
    from kubestream.transport import CurveKeys, generate_keypair

    public = os.environ.get(ENV_PREFIX + "CURVE_PUBLIC_KEY")
    secret = os.environ.get(ENV_PREFIX + "CURVE_SECRET_KEY")
    if public and secret:
        try:
            return CurveKeys(public, secret)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}CURVE_PUBLIC_KEY/SECRET_KEY: {exc}") from None
    if generate:
        keys = CurveKeys(*generate_keypair())
        logs.redact(keys.secret)
        return keys
    raise ConfigError(
        f"{ENV_PREFIX}CURVE_PUBLIC_KEY and {ENV_PREFIX}CURVE_SECRET_KEY must be set "
        "(the job's key pair, from its Secret)"
    )


def _driver_options(
    args: argparse.Namespace, app: str, app_args: list[str], keys: Any, port: int
) -> Any:
    from kubestream.driver.main import DriverOptions

    return DriverOptions(
        app=app,
        keys=keys,
        app_args=app_args,
        batch_interval=args.batch_interval,
        checkpoint=args.checkpoint,
        checkpoint_interval=args.checkpoint_interval,
        write_ahead_log=args.write_ahead_log,
        backpressure=args.backpressure,
        max_rate=args.max_rate,
        duration=args.duration,
        host=getattr(args, "host", "127.0.0.1"),
        port=port,
        graceful_timeout=args.graceful_timeout,
        on_batch_failure=args.on_batch_failure,
        heartbeat_timeout=args.heartbeat_timeout,
        log_level=args.log_level,
        log_format=args.log_format,
        job=_job(args) or "",
        ui_port=args.ui_port,
    )


def _default_job(app: str) -> str:
    """`path/to/wordcount.py:build` and `pkg.wordcount:build` are both job `wordcount`."""
    target = app.split(":", maxsplit=1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return target.rsplit(".", 1)[-1]


def _job(args: argparse.Namespace) -> str | None:
    app = getattr(args, "app", None)
    return getattr(args, "job", None) or (_default_job(app) if app else None)


def _executor_id(args: argparse.Namespace) -> str:
    return str(args.executor_id or os.environ.get("HOSTNAME") or f"exec-{os.getpid()}")


def _cmd_run(args: argparse.Namespace) -> int:
    from kubestream.driver.main import run_driver

    options = _driver_options(args, args.app, args.app_args, _keys_from_env(generate=True), 0)
    options = type(options)(**{**options.__dict__, "host": "127.0.0.1"})
    return run_driver(options, local_executors=args.executors)


def _cmd_driver(args: argparse.Namespace) -> int:
    from kubestream.driver.main import run_driver

    if not args.app:
        raise ConfigError(f"--app (or {ENV_PREFIX}APP) is required")
    app_args = shlex.split(args.app_args or "") + list(args.app_args_extra)
    options = _driver_options(
        args, args.app, app_args, _keys_from_env(generate=False), args.driver_port
    )
    return run_driver(options)


def _cmd_executor(args: argparse.Namespace) -> int:
    if os.environ.get("PYTHONHASHSEED") is None:
        # Shuffles partition by hash(); every executor must hash strings alike.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "kubestream", *sys.argv[1:]])
    from kubestream.executor.process import ExecutorProcess

    process = ExecutorProcess(
        _executor_id(args),
        f"tcp://{args.driver_host}:{args.driver_port}",
        _keys_from_env(generate=False),
        advertise_host=args.advertise_host,
        block_host=args.block_host,
        block_port=args.block_port,
        metrics_port=args.metrics_port,
        cores=args.cores,
        heartbeat_interval=args.heartbeat_interval,
        driver_timeout=args.driver_timeout,
        parent_pid=args.parent_pid,
    )
    # In a pod the executor is PID 1, which ignores SIGTERM without a handler:
    # deleting the pod would wait out its whole grace period before SIGKILL.
    signal.signal(signal.SIGTERM, lambda signum, frame: process.stop())
    return process.run()


def _cmd_decommission(args: argparse.Namespace) -> int:
    from kubestream.driver.api_auth import api_token
    from kubestream.driver.api_client import decommission

    keys = _keys_from_env(generate=False)
    outcome = decommission(args.url, args.executor_id, api_token(keys.secret), args.timeout)
    print(f"executor {args.executor_id}: {outcome}")
    return 0 if outcome == "decommissioned" else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, app_args = argv[:split], argv[split + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.app_args = app_args if args.command == "run" else getattr(args, "app_args", None)
    args.app_args_extra = app_args
    logs.redact(os.environ.get(ENV_PREFIX + "CURVE_SECRET_KEY"))
    logs.configure(
        args.log_level,
        getattr(args, "log_format", "text"),  # plugin commands may not have these flags
        job=_job(args),
        executor_id=_executor_id(args) if args.command == "executor" else None,
    )
    try:
        code: int = args.func(args)
    except (ConfigError, OSError) as exc:
        print(f"kubestream: error: {exc}", file=sys.stderr)
        return 2
    return code
