"""Settings of a Cassandra sink: where the cluster is, how to authenticate, how to write.

Credentials and TLS material are never values here: they are references, the
names of environment variables (a StreamingJob's `secretRefs` put Secret keys
there) and paths of files (a mounted Secret), read where the session is opened.
So a task, a checkpoint, a log line or an exception can show these settings
whole and leak nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from kubestream import logs
from kubestream.errors import ConfigError

CONSISTENCY_LEVELS = (
    "ANY",
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
    "LOCAL_ONE",
)
"""Write consistency levels by the names CQL and the driver use (SERIAL ones are for reads)."""

BAD_RECORD_POLICIES = ("fail", "skip")


@dataclass(frozen=True)
class CassandraConnection:
    """How executors and the driver reach a cluster.

    contact_points: hosts ("10.0.0.1" or "cassandra.ns.svc"); port: the native protocol
    port; local_dc: the data center LOCAL_* consistency levels mean (default: the first
    contact point's). username_env / password_env: names of environment variables
    holding the credentials (PasswordAuthenticator); both or neither. ssl_ca_file (a
    PEM file) or ssl_ca_env (an environment variable holding the PEM text, e.g. from
    secretRefs) turns TLS on and verifies the server against that CA (and its host
    name unless check_hostname=False); ssl_cert_file / ssl_key_file add a client
    certificate. Timeouts are seconds.
    """

    contact_points: tuple[str, ...] = ("127.0.0.1",)
    port: int = 9042
    local_dc: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    ssl_ca_file: str | None = None
    ssl_ca_env: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    check_hostname: bool = True
    connect_timeout: float = 10.0
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        points = self.contact_points
        if (
            isinstance(points, str)
            or not points
            or not all(isinstance(p, str) and p for p in points)
        ):
            raise ConfigError(
                f"CassandraConnection: contact_points must be a non-empty sequence of host"
                f" names, got {points!r}"
            )
        object.__setattr__(self, "contact_points", tuple(points))
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigError(f"CassandraConnection: port must be 1-65535, got {self.port!r}")
        if (self.username_env is None) != (self.password_env is None):
            raise ConfigError(
                "CassandraConnection: give both username_env and password_env (names of"
                " environment variables, e.g. from the job's secretRefs) or neither"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ConfigError("CassandraConnection: give both ssl_cert_file and ssl_key_file")
        if self.ssl_ca_file is not None and self.ssl_ca_env is not None:
            raise ConfigError("CassandraConnection: give ssl_ca_file or ssl_ca_env, not both")
        if self.ssl_cert_file is not None and not self.tls:
            raise ConfigError(
                "CassandraConnection: a client certificate needs ssl_ca_file or ssl_ca_env"
            )
        for name in ("connect_timeout", "request_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"CassandraConnection: {name} must be > 0 s, got {value!r}")

    @property
    def tls(self) -> bool:
        """Whether sessions use TLS: a CA was given, as a file or an environment variable."""
        return self.ssl_ca_file is not None or self.ssl_ca_env is not None

    def ca_pem(self) -> str | None:
        """The CA certificates from ssl_ca_env; ConfigError if the variable is unset."""
        if self.ssl_ca_env is None:
            return None
        pem = os.environ.get(self.ssl_ca_env)
        if not pem:
            raise ConfigError(
                f"Cassandra TLS: environment variable {self.ssl_ca_env} is not set (map the"
                " CA certificate from a Secret with the StreamingJob's secretRefs)"
            )
        return pem

    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from the environment; the password is redacted from logs.

        Raises ConfigError naming the variable that is unset.
        """
        if self.username_env is None or self.password_env is None:
            return None
        values = []
        for name in (self.username_env, self.password_env):
            value = os.environ.get(name)
            if not value:
                raise ConfigError(
                    f"Cassandra credentials: environment variable {name} is not set (map it"
                    " from a Secret with the StreamingJob's secretRefs)"
                )
            values.append(value)
        logs.redact(values[1])
        return values[0], values[1]

    @property
    def fingerprint(self) -> str:
        """Stable id of these settings, for caching sessions per process."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WriteOptions:
    """How each batch is written; see DStream.save_to_cassandra for each field."""

    consistency_level: str = "LOCAL_QUORUM"
    ttl: int | None = None
    concurrency: int = 64
    batch_size_bytes: int = 4096
    on_bad_record: str = "fail"
    dead_letter_dir: str | None = None
    allow_counter_tables: bool = False

    def __post_init__(self) -> None:
        level = self.consistency_level
        if not isinstance(level, str) or level.upper() not in CONSISTENCY_LEVELS:
            raise ConfigError(
                f"save_to_cassandra: consistency_level must be one of"
                f" {', '.join(CONSISTENCY_LEVELS)}, got {level!r}"
            )
        object.__setattr__(self, "consistency_level", level.upper())
        if self.ttl is not None and (not isinstance(self.ttl, int) or self.ttl <= 0):
            raise ConfigError(f"save_to_cassandra: ttl must be whole seconds > 0, got {self.ttl!r}")
        if not isinstance(self.concurrency, int) or not 1 <= self.concurrency <= 1024:
            raise ConfigError(
                f"save_to_cassandra: concurrency (writes in flight per task) must be 1-1024,"
                f" got {self.concurrency!r}"
            )
        if not isinstance(self.batch_size_bytes, int) or self.batch_size_bytes < 0:
            raise ConfigError(
                "save_to_cassandra: batch_size_bytes must be >= 0 (0: no multi-row batches),"
                f" got {self.batch_size_bytes!r}"
            )
        if self.on_bad_record not in BAD_RECORD_POLICIES:
            raise ConfigError(
                f"save_to_cassandra: on_bad_record must be 'fail' or 'skip', got"
                f" {self.on_bad_record!r}"
            )
        if self.dead_letter_dir is not None and self.on_bad_record != "skip":
            raise ConfigError("save_to_cassandra: dead_letter_dir needs on_bad_record='skip'")
