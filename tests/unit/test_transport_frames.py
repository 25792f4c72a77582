"""Messages split into bounded frames and joined back; refusal warnings rate-limited."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubestream.transport import FRAME_BYTES, RateLimitedWarning, decode, encode


@settings(max_examples=25, deadline=None)
@given(
    size=st.sampled_from([0, 1, FRAME_BYTES - 40, FRAME_BYTES, 3 * FRAME_BYTES + 7]), tag=st.text()
)
def test_any_message_round_trips_through_frames_no_larger_than_the_limit(
    size: int, tag: str
) -> None:
    message = {"tag": tag, "payload": b"x" * size}
    frames = encode(message)
    assert all(len(f) <= FRAME_BYTES for f in frames)
    assert decode([bytes(f) for f in frames]) == message


def test_refusal_warnings_are_rate_limited_with_a_count_of_the_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    warning = RateLimitedWarning(interval=10.0, now=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="kubestream.transport"):
        for peer in range(100):
            warning.warn("refused peer %s", peer)
        clock[0] = 10.5
        warning.warn("refused peer %s", "last")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused peer 0", "refused peer last (99 more like it suppressed)"]
