"""Real brokers for the tests, started and stopped by the repo's hack/brokers/<name>.sh.

Each script installs its server into $KUBESTREAM_CACHE on first use, starts it
on 127.0.0.1 with free ports, waits until a real client is served, and prints
the addresses as KEY=VALUE lines; `down` stops it by the PID it recorded.
Benchmarks use the same helpers, so tests and measurements run the same server.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HACK = Path(__file__).resolve().parent.parent / "hack" / "brokers"


@dataclass(frozen=True)
class Broker:
    """A server started from `directory`; `addresses` holds what its script printed."""

    name: str
    directory: Path
    addresses: dict[str, str]
    startup_seconds: float

    def stop(self) -> None:
        subprocess.run([HACK / f"{self.name}.sh", "down", self.directory], check=True)


def start_broker(name: str, directory: Path, env: dict[str, str] | None = None) -> Broker:
    """Run `hack/brokers/<name>.sh up directory`; raises with its stderr if it fails."""
    started = time.monotonic()
    result = subprocess.run(
        [HACK / f"{name}.sh", "up", directory],
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        subprocess.run([HACK / f"{name}.sh", "down", directory], check=False)
        raise RuntimeError(f"{name} did not start:\n{result.stderr}")
    pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return Broker(name, directory, dict(pairs), time.monotonic() - started)


@dataclass(frozen=True)
class KafkaBroker:
    """A single-node KRaft broker with a PLAINTEXT listener and a SASL_PLAINTEXT one
    that accepts SCRAM-SHA-256 for `sasl_username` / `sasl_password`."""

    broker: Broker
    sasl_username: str
    sasl_password: str

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def sasl_bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_SASL_BOOTSTRAP_SERVERS"]


def start_kafka(directory: Path) -> KafkaBroker:
    """A broker in `directory` with a SCRAM user whose password is new every run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sasl_port = s.getsockname()[1]
    username, password = "kubestream-test", secrets.token_urlsafe(18)
    broker = start_broker(
        "kafka",
        directory,
        {"KAFKA_SASL_PORT": str(sasl_port), "KAFKA_SCRAM_USERS": f"{username}:{password}"},
    )
    return KafkaBroker(broker, username, password)
