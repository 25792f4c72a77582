"""The `kubestream` command: run (local mode), driver and executor (pod entry points).

Every flag, and the environment variable KUBESTREAM_<FLAG> it can also come from
(how pods are configured), is generated from its declaration in
`kubestream.settings`. User mistakes end in one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

from kubestream import interpreter, logs, settings
from kubestream.errors import ConfigError

COMMANDS = {
    "run": settings.Reader.RUN,
    "driver": settings.Reader.DRIVER,
    "executor": settings.Reader.EXECUTOR,
    "decommission": settings.Reader.DECOMMISSION,
}
"""Each command and the reader whose settings (`kubestream.settings`) are its flags."""


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The CLI's parser; with `plugins`, also the commands plugged in from other packages
    (the operator: importing it takes a second, which no driver or executor should wait)."""
    parser = argparse.ArgumentParser(
        prog="kubestream", description="Micro-batch stream processing, locally or on Kubernetes."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run", help="run an application locally: driver plus N executor processes"
    )
    run.add_argument("app", help="path/to/app.py[:function] or package.module[:function]")
    run.set_defaults(func=_cmd_run)
    driver = commands.add_parser("driver", help="run the driver of a job (pod entry point)")
    driver.set_defaults(func=_cmd_driver)
    executor = commands.add_parser("executor", help="run an executor (pod entry point)")
    executor.set_defaults(func=_cmd_executor)
    drain = commands.add_parser(
        "decommission",
        help="drain an executor of a running job through its driver's API, then let it exit",
    )
    drain.add_argument("executor_id", help="the executor's id (on Kubernetes, its pod name)")
    drain.set_defaults(func=_cmd_decommission)
    for name, reader in COMMANDS.items():
        command = commands.choices[name]
        settings.add_arguments(command, settings.read_by(reader))
        command.set_defaults(reader=reader)

    if plugins:
        for plugin in entry_points(group="kubestream.commands"):
            plugin.load()(commands)
    return parser


def _keys(values: settings.Values, generate: bool) -> Any:
    from kubestream.transport import CurveKeys, generate_keypair

    public = values[settings.CURVE_PUBLIC_KEY]
    secret = values[settings.CURVE_SECRET_KEY]
    names = f"{settings.CURVE_PUBLIC_KEY.env}/{settings.CURVE_SECRET_KEY.env}"
    if public and secret:
        try:
            return CurveKeys(public, secret)
        except ValueError as exc:
            raise ConfigError(f"{names}: {exc}") from None
    if generate:
        keys = CurveKeys(*generate_keypair())
        logs.redact(keys.secret)
        return keys
    raise ConfigError(
        f"{settings.CURVE_PUBLIC_KEY.env} and {settings.CURVE_SECRET_KEY.env} must be set "
        "(the job's key pair, from its Secret)"
    )


def _default_job(app: str) -> str:
    """`path/to/wordcount.py:build` and `pkg.wordcount:build` are both job `wordcount`."""
    target = app.split(":", maxsplit=1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return target.rsplit(".", 1)[-1]


def _job(args: argparse.Namespace) -> str | None:
    app = getattr(args, "app", None)
    return getattr(args, "job", None) or (_default_job(app) if app else None)


def _executor_id(values: settings.Values) -> str:
    return values[settings.EXECUTOR_ID] or os.environ.get("HOSTNAME") or f"exec-{os.getpid()}"


def _cmd_run(args: argparse.Namespace) -> int:
    from kubestream.driver.main import DriverOptions, run_driver

    values: settings.Values = args.settings
    options = DriverOptions(
        app=args.app,
        keys=_keys(values, generate=True),
        settings=values,
        app_args=args.app_args,
        host="127.0.0.1",
        port=0,
        job=_job(args) or "",
    )
    interpreter.tune_for_batches()
    return run_driver(options, local_executors=values[settings.EXECUTORS])


def _cmd_driver(args: argparse.Namespace) -> int:
    from kubestream.driver.main import DriverOptions, run_driver

    values: settings.Values = args.settings
    app = values[settings.APP]
    if not app:
        raise ConfigError(f"{settings.APP.option} (or {settings.APP.env}) is required")
    options = DriverOptions(
        app=app,
        keys=_keys(values, generate=False),
        settings=values,
        app_args=shlex.split(values[settings.APP_ARGS] or "") + list(args.app_args_extra),
        host=values[settings.HOST],
        port=values[settings.DRIVER_PORT],
        job=_job(args) or "",
    )
    interpreter.tune_for_batches()
    return run_driver(options)


def _cmd_executor(args: argparse.Namespace) -> int:
    if os.environ.get("PYTHONHASHSEED") is None:
        # Shuffles partition by hash(); every executor must hash strings alike.
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable, "-m", "kubestream", *sys.argv[1:]])
    from kubestream.access import Access
    from kubestream.core import resources
    from kubestream.executor.process import ExecutorProcess

    values: settings.Values = args.settings
    resources.configure(
        settings.KAFKA_CONSUMER_POOL_SIZE, values[settings.KAFKA_CONSUMER_POOL_SIZE]
    )
    keys = _keys(values, generate=False)
    # /metrics is read as the driver's: the job's read token, or the scrape token.
    metrics_access = Access.of_job(
        keys.secret,
        read_open=values[settings.UI_READ_ACCESS] == "open",
        change_open=True,  # an executor's port changes nothing
        scrape=values[settings.UI_SCRAPE_TOKEN],
        scrape_file=values[settings.UI_SCRAPE_TOKEN_FILE],
        generation_file=values[settings.UI_TOKEN_GENERATION_FILE],
    )
    process = ExecutorProcess(
        _executor_id(values),
        f"tcp://{values[settings.DRIVER_HOST]}:{values[settings.DRIVER_PORT]}",
        keys,
        advertise_host=values[settings.ADVERTISE_HOST],
        block_host=values[settings.BLOCK_HOST],
        block_port=values[settings.BLOCK_PORT],
        metrics_port=values[settings.METRICS_PORT],
        metrics_access=metrics_access,
        cores=values[settings.CORES],
        heartbeat_interval=values[settings.HEARTBEAT_INTERVAL],
        driver_timeout=values[settings.DRIVER_TIMEOUT],
        parent_pid=values[settings.PARENT_PID],
    )
    interpreter.tune_for_batches()
    # In a pod the executor is PID 1, which ignores SIGTERM without a handler:
    # deleting the pod would wait out its whole grace period before SIGKILL.
    signal.signal(signal.SIGTERM, lambda signum, frame: process.stop())
    return process.run()


def _cmd_decommission(args: argparse.Namespace) -> int:
    from kubestream.driver.api_auth import GenerationFile, JobTokens
    from kubestream.driver.api_client import decommission

    values: settings.Values = args.settings
    keys = _keys(values, generate=False)
    path = values[settings.UI_TOKEN_GENERATION_FILE]
    tokens = JobTokens(keys.secret, GenerationFile(path) if path else None)
    change, read = tokens.change(), tokens.read()
    if change is None or read is None:
        raise ConfigError(
            f"{settings.UI_TOKEN_GENERATION_FILE.env} ({path}): the file must hold the job's "
            "token generation, a non-negative integer (the ui-token-generation key of its Secret)"
        )
    outcome = decommission(
        values[settings.URL], args.executor_id, change, values[settings.TIMEOUT], read
    )
    print(f"executor {args.executor_id}: {outcome}")
    return 0 if outcome == "decommissioned" else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, app_args = argv[:split], argv[split + 1 :]
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(plugins=command not in COMMANDS)
    args = parser.parse_args(argv)
    args.app_args = app_args if args.command == "run" else getattr(args, "app_args", None)
    args.app_args_extra = app_args
    logs.redact(*(os.environ.get(s.env) for s in (settings.CURVE_SECRET_KEY, settings.STATE_KEY)))
    reader = getattr(args, "reader", None)  # plugin commands declare their own flags
    try:
        if reader is not None:
            args.settings = settings.Values.parsed(args, settings.read_by(reader))
    except ValueError as exc:
        print(f"kubestream: error: {exc}", file=sys.stderr)
        return 2
    logs.configure(
        args.log_level,
        getattr(args, "log_format", "text"),
        job=_job(args),
        executor_id=_executor_id(args.settings) if args.command == "executor" else None,
    )
    try:
        code: int = args.func(args)
    except (ConfigError, OSError) as exc:
        print(f"kubestream: error: {exc}", file=sys.stderr)
        return 2
    return code
