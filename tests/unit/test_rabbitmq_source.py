"""The RabbitMQ source's pure parts, in process (no broker: the real-server tests are in
tests/integration/rabbitmq): id dedupe against a plain-Python reference, the reconnect
backoff, and the settings' errors."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream.errors import ConfigError
from kubestream.streaming.sources.rabbitmq import (
    Backoff,
    RabbitMQReceiver,
    RabbitMQSettings,
    body_text,
    check_block,
    dedupe_by_id,
)
from kubestream.testing import run_batches

# A redelivery carries the same id and body, so a record is a function of its id; records
# without an id are anything.
pairs = st.one_of(
    st.sampled_from("abcdef").map(lambda i: (i, ord(i))),
    st.integers(0, 9).map(lambda r: (None, r)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(pairs, max_size=8), min_size=1, max_size=6))
def test_dedupe_keeps_each_ids_first_record_and_every_record_without_id(
    batches: list[list[tuple[str | None, int]]],
) -> None:
    seen: set[str] = set()
    expected: list[list[int]] = []
    for batch in batches:
        out = []
        for message_id, record in batch:
            if message_id is None:
                out.append(record)
            elif message_id not in seen:
                seen.add(message_id)
                out.append(record)
        expected.append(out)
    produced = run_batches([batches], lambda s: dedupe_by_id(s, window=3600))
    assert [sorted(b) for b in produced] == [sorted(b) for b in expected]


def test_dedupe_forgets_ids_after_the_window() -> None:
    batches = [[("a", 1)], [("a", 2)], [], [], [("a", 3)]]
    produced = run_batches([batches], lambda s: dedupe_by_id(s, window=1.5))
    assert produced == [[1], [], [], [], [3]]


def test_backoff_doubles_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial=0.5, maximum=3.0)
    assert [backoff.delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.delay() == 0.5


def test_settings_hide_the_password_and_name_bad_fields() -> None:
    secret = "s3cr3t-value"
    config = RabbitMQSettings("127.0.0.1", 5672, "q", password=secret)
    assert secret not in repr(config)
    with pytest.raises(ConfigError, match="port"):
        RabbitMQSettings("127.0.0.1", 0, "q")
    with pytest.raises(ConfigError, match="queue"):
        RabbitMQSettings("127.0.0.1", 5672, "")
    with pytest.raises(ConfigError, match="password_file"):
        RabbitMQSettings("127.0.0.1", 5672, "q", password="x", password_file="/x")
    with pytest.raises(ConfigError, match="block_size"):
        check_block(0, 1.0)
    with pytest.raises(ConfigError, match="block_interval"):
        check_block(100, 600.0)


def test_unreadable_password_file_is_named_without_its_content() -> None:
    config = RabbitMQSettings("127.0.0.1", 5672, "q", password_file="/nonexistent/password")
    with pytest.raises(ConfigError, match="/nonexistent/password"):
        config.connection_parameters()


def test_missing_password_variable_points_at_secret_refs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBESTREAM_TEST_RABBITMQ_PASSWORD", raising=False)
    config = RabbitMQSettings(
        "127.0.0.1", 5672, "q", password_env="KUBESTREAM_TEST_RABBITMQ_PASSWORD"
    )
    with pytest.raises(ConfigError, match=r"KUBESTREAM_TEST_RABBITMQ_PASSWORD.*secretRefs"):
        config.connection_parameters()
    with pytest.raises(ConfigError, match="password_file"):
        RabbitMQSettings("127.0.0.1", 5672, "q", password="x", password_env="V")


def test_receiver_pickles_without_its_thread() -> None:
    receiver = RabbitMQReceiver(RabbitMQSettings("h", 5672, "q"), body_text, 10, 0.5, None)
    copy = pickle.loads(pickle.dumps(receiver))
    assert copy.settings == receiver.settings and copy.block_size == 10
