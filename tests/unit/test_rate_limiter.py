"""RateLimiter: receivers are paced to their limit; a changed limit reprices what is owed."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream.executor.rate_limiter import RateLimiter


class Now:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def test_no_limit_never_waits() -> None:
    limiter = RateLimiter(None, Now())
    assert limiter.reserve(1_000_000) == 0.0


def test_records_wait_their_turn_at_the_rate() -> None:
    limiter = RateLimiter(100, Now())
    assert limiter.reserve(50) == 0.0
    assert limiter.reserve(50) == pytest.approx(0.5)
    assert limiter.reserve(100) == pytest.approx(1.0)


def test_a_new_rate_reprices_the_records_already_let_through() -> None:
    now = Now()
    limiter = RateLimiter(100, now)
    limiter.reserve(300)  # 3 s of records at 100/s: the next ones wait until t=3
    now.value = 1.0
    limiter.set_rate(400)  # 200 records still owed at t=1: half a second at 400/s
    assert limiter.reserve(1) == pytest.approx(0.5)
    limiter.set_rate(None)
    assert limiter.reserve(1) == 0.0


@given(
    rate=st.floats(min_value=1, max_value=10_000),
    chunks=st.lists(st.integers(min_value=1, max_value=500), min_size=5, max_size=50),
)
def test_a_greedy_producer_gets_the_rate_and_no_more(rate: float, chunks: list[int]) -> None:
    now = Now()
    limiter = RateLimiter(rate, now)
    for chunk in chunks:
        now.value += limiter.reserve(chunk)
    stored_before_last = sum(chunks[:-1])
    assert now.value == pytest.approx(stored_before_last / rate)


def test_a_stopped_receiver_does_not_wait() -> None:
    limiter = RateLimiter(1)
    limiter.reserve(3600)
    stopped = threading.Event()
    stopped.set()
    waiter = threading.Thread(target=limiter.acquire, args=(1, stopped))
    waiter.start()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
