"""``kubestream operator``: runs the kopf operator.

Plugged into the runtime's CLI through the ``kubestream.commands`` entry point
(``register``); ``python -m kubestream_operator`` runs the same parser. Every
flag can also come from an environment variable, which is how the operator's
Deployment configures it.
"""

import argparse
import asyncio
import logging
import os

import kopf
from prometheus_client import CollectorRegistry, start_http_server

from kubestream_operator.handlers import build_registry
from kubestream_operator.kube import Cluster, load_config
from kubestream_operator.metrics import OperatorMetrics
from kubestream_operator.peering import choose_priority

log = logging.getLogger(__name__)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return None if value is None else int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--namespace",
        action="append",
        default=[n for n in _env("KUBESTREAM_OPERATOR_NAMESPACES", "").split(",") if n],
        help="namespace to watch; repeat for several; none means all namespaces "
        "(env KUBESTREAM_OPERATOR_NAMESPACES, comma-separated)",
    )
    parser.add_argument(
        "--peering",
        default=_env("KUBESTREAM_OPERATOR_PEERING", ""),
        help="kopf peering name shared by operator replicas; empty runs standalone "
        "(env KUBESTREAM_OPERATOR_PEERING)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=_env_int("KUBESTREAM_OPERATOR_PRIORITY"),
        help="peering priority: the highest live replica is active; unset, each "
        "replica derives a distinct negative one from --pod-name "
        "(env KUBESTREAM_OPERATOR_PRIORITY)",
    )
    parser.add_argument(
        "--pod-name",
        default=_env("KUBESTREAM_OPERATOR_POD_NAME", _env("HOSTNAME", "")),
        help="this replica's pod name, the source of its peering priority when none "
        "is given (env KUBESTREAM_OPERATOR_POD_NAME, else HOSTNAME)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(_env("KUBESTREAM_OPERATOR_METRICS_PORT", "9090")),
        help="port of the Prometheus /metrics endpoint, 0 to disable "
        "(env KUBESTREAM_OPERATOR_METRICS_PORT)",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=int(_env("KUBESTREAM_OPERATOR_LIVENESS_PORT", "8080")),
        help="port of the /healthz liveness endpoint, 0 to disable "
        "(env KUBESTREAM_OPERATOR_LIVENESS_PORT)",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=float(_env("KUBESTREAM_OPERATOR_RESYNC_SECONDS", "10")),
        help="how often every job is reconciled even without a change "
        "(env KUBESTREAM_OPERATOR_RESYNC_SECONDS)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("KUBESTREAM_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (env KUBESTREAM_LOG_LEVEL)",
    )


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
    cluster = Cluster()
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
