"""``kubestream operator``: runs the kopf operator.

Plugged into the runtime's CLI through the ``kubestream.commands`` entry point
(``register``); ``python -m kubestream_operator`` runs the same parser. Every
flag can also come from an environment variable, which is how the operator's
Deployment configures it; both are generated from the declarations below, as the
runtime's are.
"""

import argparse
import asyncio
import logging
import os
from typing import Any

import kopf
from prometheus_client import CollectorRegistry, start_http_server

from kubestream import settings
from kubestream.settings import Reader, Setting
from kubestream_operator.handlers import build_registry
from kubestream_operator.kube import Cluster, load_config
from kubestream_operator.metrics import OperatorMetrics
from kubestream_operator.peering import choose_priority

log = logging.getLogger(__name__)


PREFIX = "KUBESTREAM_OPERATOR_"
NAMESPACES_ENV = PREFIX + "NAMESPACES"

PEERING = Setting[str](
    "peering",
    str,
    "",
    "kopf peering name shared by operator replicas; empty runs standalone",
    Reader.OPERATOR,
    prefix=PREFIX,
)
PRIORITY = Setting[int | None](
    "priority",
    int,
    None,
    "peering priority: the highest live replica is active; unset, each replica derives "
    "a distinct negative one from --pod-name",
    Reader.OPERATOR,
    prefix=PREFIX,
)
POD_NAME = Setting[str](
    "pod_name",
    str,
    "",
    "this replica's pod name, the source of its peering priority when none is given "
    "(else HOSTNAME)",
    Reader.OPERATOR,
    prefix=PREFIX,
)
METRICS_PORT = Setting[int](
    "metrics_port",
    int,
    9090,
    "port of the Prometheus /metrics endpoint, 0 to disable",
    Reader.OPERATOR,
    minimum=0,
    maximum=65535,
    prefix=PREFIX,
)
LIVENESS_PORT = Setting[int](
    "liveness_port",
    int,
    8080,
    "port of the /healthz liveness endpoint, 0 to disable",
    Reader.OPERATOR,
    minimum=0,
    maximum=65535,
    prefix=PREFIX,
)
RESYNC_SECONDS = Setting[float](
    "resync_seconds",
    float,
    10.0,
    "how often every job is reconciled even without a change",
    Reader.OPERATOR,
    unit="seconds",
    minimum=0,
    exclusive_minimum=True,
    prefix=PREFIX,
)
OWN_NAMESPACE = Setting[str](
    "own_namespace",
    str,
    "",
    "the operator's own namespace, whose pods may reach each job's UI port (the chart sets "
    "it from the pod's)",
    Reader.OPERATOR,
    prefix=PREFIX,
)
MONITORING_NAMESPACE = Setting[str](
    "monitoring_namespace",
    str,
    "",
    "a namespace whose pods (Prometheus) may also reach each job's UI port",
    Reader.OPERATOR,
    prefix=PREFIX,
)
SCRAPE_TOKEN = Setting[str | None](
    "scrape_token",
    str,
    None,
    "the token a scraper (the chart's PodMonitor) reads jobs' /metrics with; written into "
    "each new job's Secret, never logged",
    Reader.OPERATOR,
    flag=False,
    secret=True,
    prefix=PREFIX,
)
OPERATOR: tuple[Setting[Any], ...] = (
    PEERING,
    PRIORITY,
    POD_NAME,
    METRICS_PORT,
    LIVENESS_PORT,
    RESYNC_SECONDS,
    OWN_NAMESPACE,
    MONITORING_NAMESPACE,
    SCRAPE_TOKEN,
    settings.LOG_LEVEL,
)
"""The operator's settings, declared as the runtime's are (`kubestream.settings`); the
log level is the runtime's own, `KUBESTREAM_LOG_LEVEL`."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # A list, the one flag the scalar declarations do not cover: repeated on the
    # command line, comma-separated in its variable.
    parser.add_argument(
        "--namespace",
        action="append",
        default=[n for n in os.environ.get(NAMESPACES_ENV, "").split(",") if n],
        help="namespace to watch; repeat for several; none means all namespaces "
        f"[env: {NAMESPACES_ENV}, comma-separated]",
    )
    environ = dict(os.environ)
    environ.setdefault(POD_NAME.env, environ.get("HOSTNAME", ""))
    settings.add_arguments(parser, OPERATOR, environ)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``operator`` subcommand to the kubestream CLI."""
    parser = subparsers.add_parser(
        "operator", help="run the StreamingJob operator (kopf) against the current cluster"
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the operator until it is stopped; returns the process exit code."""
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    load_config()
    ui_namespaces = tuple(n for n in (args.own_namespace, args.monitoring_namespace) if n)
    if not args.own_namespace:
        log.warning(
            "%s is not set: jobs' NetworkPolicies admit no pod to the UI port, so where "
            "they are enforced this operator cannot read or drain drivers",
            OWN_NAMESPACE.env,
        )
    cluster = Cluster(ui_namespaces, os.environ.get(SCRAPE_TOKEN.env, ""))
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=registry)
    namespaces = list(args.namespace)
    priority = 0
    if args.peering:
        cluster.ensure_peering(args.peering, namespaces)
        chosen = choose_priority(args.priority, args.pod_name)
        level = logging.WARNING if chosen.shared else logging.INFO
        log.log(level, "peering as %r, priority %d: %s", args.peering, chosen.value, chosen.reason)
        priority = chosen.value
    liveness = f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
    asyncio.run(
        kopf.operator(
            registry=build_registry(cluster, metrics, args.resync_seconds),
            namespaces=namespaces,
            clusterwide=not namespaces,
            standalone=not args.peering,
            peering_name=args.peering or None,
            priority=priority,
            liveness_endpoint=liveness,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubestream-operator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
