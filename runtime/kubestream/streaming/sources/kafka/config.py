"""Client settings of a Kafka stream or sink, with secrets kept out of every log.

Settings are librdkafka's names ("bootstrap.servers", "security.protocol",
"sasl.mechanism", "sasl.username", "sasl.password", "ssl.ca.location", ...), as
confluent-kafka takes them. They travel to executors inside tasks (over the
CURVE-encrypted transport); their repr and str show secrets as "***", so a
task, a log line or an exception that names them never leaks one.

A value may instead refer to where the secret is, in the syntax of Kafka's own
config providers: ``${env:NAME}`` (EnvVarConfigProvider: a variable, e.g. from the
StreamingJob's secretRefs) or ``${directory:/path/to/dir:file}``
(DirectoryConfigProvider: a file, e.g. of a Secret mounted with secretMounts).
Only the reference then travels with tasks and checkpoints; each process opening
a client resolves it (`to_dict`) and keeps the value out of its logs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from kubestream import logs

SECRET_WORDS = ("password", "secret", "token", ".pem", "jaas", "oauthbearer.config")
"""A setting whose name contains one of these holds a credential."""


_REFERENCE = re.compile(r"^\$\{(env|directory):(.+)\}$")


def is_secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def resolve(name: str, value: str) -> str:
    """`value`, or what its ``${env:...}`` / ``${directory:DIR:FILE}`` reference names;
    ValueError naming the setting and the reference (never a value) when it cannot be read."""
    found = _REFERENCE.match(value)
    if found is None:
        return value
    provider, where = found.groups()
    if provider == "env":
        resolved = os.environ.get(where)
        if resolved is None:
            raise ValueError(
                f"Kafka setting {name!r}: environment variable {where} is not set in this"
                " process: map it from a Secret (the StreamingJob's secretRefs)"
            )
    else:
        directory, sep, file = where.rpartition(":")
        if not sep or not directory or not file or "/" in file:
            raise ValueError(
                f"Kafka setting {name!r}: write ${{directory:/path/to/dir:file}}, got {value!r}"
            )
        try:
            resolved = (Path(directory) / file).read_text().rstrip("\r\n")
        except OSError as e:
            raise ValueError(
                f"Kafka setting {name!r}: {directory}/{file} cannot be read ({e.strerror}):"
                " mount the Secret there (the StreamingJob's secretMounts)"
            ) from None
    if is_secret(name):
        logs.redact(resolved)
    return resolved


@dataclass(frozen=True)
class ClientConfig(Mapping[str, str]):
    """Immutable librdkafka settings; ValueError naming the setting for a bad one."""

    items_: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, settings: Mapping[str, object], **defaults: str) -> ClientConfig:
        """`settings` over `defaults`; values become strings as librdkafka wants them."""
        merged = dict(defaults)
        for name, value in settings.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Kafka setting names must be non-empty strings, got {name!r}")
            if not isinstance(value, str | int | float):
                shown = "***" if is_secret(name) else repr(value)
                raise ValueError(f"Kafka setting {name!r} must be a string or number, got {shown}")
            merged[name] = str(value).lower() if isinstance(value, bool) else str(value)
        if not merged.get("bootstrap.servers"):
            raise ValueError("Kafka settings need 'bootstrap.servers' (host:port,...)")
        return cls(tuple(sorted(merged.items())))

    def __getitem__(self, name: str) -> str:
        for key, value in self.items_:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def with_(self, **overrides: str) -> ClientConfig:
        return ClientConfig(tuple(sorted({**dict(self.items_), **overrides}.items())))

    def to_dict(self) -> dict[str, str]:
        """The settings for the client library, references resolved and secrets included:
        never log this. ValueError naming the setting whose reference cannot be read."""
        return {name: resolve(name, value) for name, value in self.items_}

    @property
    def fingerprint(self) -> str:
        """Stable id of these settings, for caching clients; reveals no secret."""
        return hashlib.sha256(repr(self.items_).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        shown = {k: ("***" if is_secret(k) else v) for k, v in self.items_}
        return f"ClientConfig({shown})"

    __str__ = __repr__
