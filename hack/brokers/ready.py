"""Waits until a server answers a real client, for hack/brokers/<name>.sh up.

    ready.py --pid PID --log LOG [--timeout S] PROBE ADDRESS

Exits 0 once PROBE succeeds against ADDRESS; exits non-zero with the tail of
LOG if the server's process exits first or the timeout passes. Each probe is a
function below that raises until the server is usable.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def kafka(address: str) -> None:
    """An admin client's metadata lists the one broker (the controller has elected it)."""
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415  (only this probe needs it)

    admin = AdminClient({"bootstrap.servers": address, "log_level": 0})
    metadata = admin.list_topics(timeout=2)
    if len(metadata.brokers) != 1:
        raise RuntimeError(f"metadata lists {len(metadata.brokers)} brokers")


def rabbitmq(address: str) -> None:
    """pika opens a channel as guest (the node's config allows guest on loopback only)."""
    import pika  # noqa: PLC0415  (only this probe needs it)

    host, port = address.rsplit(":", 1)
    params = pika.ConnectionParameters(host, int(port), connection_attempts=1, socket_timeout=2)
    connection = pika.BlockingConnection(params)
    try:
        connection.channel()
    finally:
        connection.close()


def flume(address: str) -> None:
    """The agent's HTTP monitoring (`-Dflume.monitoring.type=http`) lists its source and its
    sink as started."""
    import json  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"http://{address}/metrics", timeout=2) as response:
        metrics = json.load(response)
    kinds = {name.split(".", 1)[0] for name, values in metrics.items() if values.get("StartTime")}
    if not {"SOURCE", "SINK"} <= kinds:
        raise RuntimeError(f"started components: {sorted(metrics)}")


PROBES: dict[str, Callable[[str], None]] = {"kafka": kafka, "rabbitmq": rabbitmq, "flume": flume}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("probe", choices=sorted(PROBES))
    parser.add_argument("address")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive(args.pid):
            break
        try:
            PROBES[args.probe](args.address)
            return 0
        except Exception as e:
            error = e
            time.sleep(0.2)
    tail = args.log.read_text(errors="replace").splitlines()[-30:] if args.log.exists() else []
    state = "running" if alive(args.pid) else "exited"
    print(
        f"{args.probe} at {args.address} not ready (pid {args.pid} {state}, last error: {error});"
        f" end of {args.log}:",
        *tail,
        sep="\n",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
