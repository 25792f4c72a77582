"""Kafka settings that refer to a variable or a file (Kafka's config-provider syntax)."""

from __future__ import annotations

import logging
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from kubestream import logs
from kubestream.streaming.sources.kafka.config import ClientConfig

NAMES = st.sampled_from(["sasl.password", "sasl.username", "ssl.key.password", "client.id"])


@hypothesis.given(st.text(min_size=1).filter(lambda v: not v.startswith("${")), NAMES)
def test_plain_values_are_passed_as_they_are(value: str, name: str) -> None:
    config = ClientConfig.of({"bootstrap.servers": "b:9092", name: value})
    assert config.to_dict()[name] == value


@hypothesis.given(st.text(min_size=1, alphabet=st.characters(blacklist_categories=["Cs", "Cc"])))
def test_references_resolve_where_the_client_opens_and_only_the_reference_travels(
    text: str,
) -> None:
    secret = "marker-password-" + text  # long: resolving adds it to the logs' redactions
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KAFKA_PASSWORD", secret)
        config = ClientConfig.of(
            {"bootstrap.servers": "b:9092", "sasl.password": "${env:KAFKA_PASSWORD}"}
        )
        assert config.to_dict()["sasl.password"] == secret
        assert config["sasl.password"] == "${env:KAFKA_PASSWORD}"
        assert secret not in repr(config.items_)


def test_a_directory_reference_reads_one_file_of_a_mounted_secret(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret-from-file\n")
    config = ClientConfig.of(
        {"bootstrap.servers": "b:9092", "sasl.password": f"${{directory:{tmp_path}:password}}"}
    )
    assert config.to_dict()["sasl.password"] == "s3cret-from-file"
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "got %s", ("s3cret-from-file",), None
    )
    assert logs.TextFormatter().format(record).endswith("got [redacted]")  # once resolved


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${env:NOT_SET_ANYWHERE}", "'sasl.password': environment variable NOT_SET_ANYWHERE"),
        ("${directory:/no/such/dir:password}", "/no/such/dir/password cannot be read"),
        ("${directory:password}", r"write \$\{directory:/path/to/dir:file\}"),
        ("${directory:/etc:a/b}", r"write \$\{directory:/path/to/dir:file\}"),
    ],
)
def test_an_unreadable_reference_names_the_setting_and_where(value: str, message: str) -> None:
    config = ClientConfig.of({"bootstrap.servers": "b:9092", "sasl.password": value})
    with pytest.raises(ValueError, match=message):
        config.to_dict()
