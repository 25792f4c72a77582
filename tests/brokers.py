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
    """A single-node KRaft broker with a PLAINTEXT listener, a SASL_PLAINTEXT one that
    accepts SCRAM-SHA-256 for `sasl_username` / `sasl_password`, a TLS one whose
    certificate (for IP 127.0.0.1) is signed by the CA in `ca_location`, and a SASL_SSL
    one with both."""

    broker: Broker
    sasl_username: str
    sasl_password: str
    ca_location: Path

    @property
    def ssl_bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_SSL_BOOTSTRAP_SERVERS"]

    @property
    def bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def sasl_bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_SASL_BOOTSTRAP_SERVERS"]

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        return self.broker.addresses["KAFKA_SASL_SSL_BOOTSTRAP_SERVERS"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tls(directory: Path) -> tuple[Path, Path]:
    """A throwaway CA and a server certificate for IP 127.0.0.1, with openssl; returns
    (CA certificate, PEM keystore of the server's key and chain)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    ca_key, ca, key, csr, cert = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        ca_key,
        "-out",
        ca,
        "-days",
        "2",
        "-subj",
        "/CN=kubestream test CA",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key,
        "-out",
        csr,
        "-subj",
        "/CN=127.0.0.1",
    )
    extensions = directory / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-out",
        cert,
        "-days",
        "2",
        "-extfile",
        extensions,
    )
    keystore = directory / "keystore.pem"
    keystore.write_text(key.read_text() + cert.read_text() + ca.read_text())
    return ca, keystore


def start_kafka(directory: Path) -> KafkaBroker:
    """A broker in `directory` with a SCRAM user whose password is new every run and a
    TLS listener with a CA made for this run."""
    username, password = "kubestream-test", secrets.token_urlsafe(18)
    ca, keystore = make_tls(directory / "tls")
    broker = start_broker(
        "kafka",
        directory,
        {
            "KAFKA_SASL_PORT": str(free_port()),
            "KAFKA_SCRAM_USERS": f"{username}:{password}",
            "KAFKA_SSL_PORT": str(free_port()),
            "KAFKA_SSL_KEYSTORE": str(keystore),
            "KAFKA_SASL_SSL_PORT": str(free_port()),
        },
    )
    return KafkaBroker(broker, username, password, ca)


@dataclass(frozen=True)
class RabbitMQBroker:
    """A RabbitMQ node with user `username` / `password` (new every run) on `port`, and an
    amqps listener on `tls_port` whose certificate (for IP 127.0.0.1) the CA in
    `ca_location` signed."""

    broker: Broker
    username: str
    password: str
    ca_location: Path

    @property
    def port(self) -> int:
        return int(self.broker.addresses["RABBITMQ_ADDRESS"].rsplit(":", 1)[1])

    @property
    def tls_port(self) -> int:
        return int(self.broker.addresses["RABBITMQ_TLS_ADDRESS"].rsplit(":", 1)[1])

    def ctl(self, *args: str) -> str:
        """rabbitmqctl against this node; its output."""
        result = subprocess.run(
            [HACK / "rabbitmq.sh", "ctl", self.broker.directory, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


def start_rabbitmq(directory: Path) -> RabbitMQBroker:
    # Not starting with "-" (token_urlsafe's alphabet has it), which rabbitmqctl add_user
    # would read as an option: the node then failed to start in 1 run of 64.
    username, password = "kubestream-test", "p" + secrets.token_urlsafe(18)
    ca, _ = make_tls(directory / "tls")
    broker = start_broker(
        "rabbitmq",
        directory,
        {
            "RABBITMQ_USERS": f"{username}:{password}",
            "RABBITMQ_TLS_PORT": str(free_port()),
            "RABBITMQ_TLS_CA": str(ca),
            "RABBITMQ_TLS_CERT": str(directory / "tls" / "server.pem"),
            "RABBITMQ_TLS_KEY": str(directory / "tls" / "server.key"),
        },
    )
    return RabbitMQBroker(broker, username, password, ca)


def start_flume(directory: Path, sink_address: str, events: int, batch_size: int = 100) -> Broker:
    """A Flume agent whose sequence source makes `events` events (bodies "0", "1", ...) and
    whose Thrift sink delivers them to `sink_address` (host:port)."""
    return start_broker(
        "flume",
        directory,
        {
            "FLUME_SINK_ADDRESS": sink_address,
            "FLUME_EVENTS": str(events),
            "FLUME_BATCH_SIZE": str(batch_size),
        },
    )


@dataclass(frozen=True)
class CassandraServer:
    """A single-node Cassandra with PasswordAuthenticator; `username` / `password` are a
    superuser role made for this run (the built-in one keeps its well-known password).
    Its native port takes plain and TLS connections, the certificate (for IP 127.0.0.1)
    signed by the CA in `ca_location`."""

    broker: Broker
    username: str
    password: str
    ca_location: Path

    @property
    def host(self) -> str:
        return self.broker.addresses["CASSANDRA_CONTACT_POINT"].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.broker.addresses["CASSANDRA_CONTACT_POINT"].rsplit(":", 1)[1])


def start_cassandra(directory: Path) -> CassandraServer:
    """A server in `directory` with a superuser whose password is new every run and TLS
    with a CA made for this run."""
    from cassandra.auth import PlainTextAuthProvider  # noqa: PLC0415  (Cassandra tests only)
    from cassandra.cluster import Cluster  # noqa: PLC0415

    ca, keystore = make_tls(directory / "tls")
    broker = start_broker("cassandra", directory, {"CASSANDRA_SSL_KEYSTORE": str(keystore)})
    username, password = "kubestream_test", secrets.token_urlsafe(18)
    host, port = broker.addresses["CASSANDRA_CONTACT_POINT"].rsplit(":", 1)
    cluster = Cluster(
        [host], port=int(port), auth_provider=PlainTextAuthProvider("cassandra", "cassandra")
    )
    try:
        cluster.connect().execute(
            f"CREATE ROLE {username} WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true",
            [password],
        )
    except BaseException:
        broker.stop()
        raise
    finally:
        cluster.shutdown()
    return CassandraServer(broker, username, password, ca)
