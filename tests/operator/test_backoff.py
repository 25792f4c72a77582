"""Restart backoff doubles and is capped."""

from kubestream_operator.backoff import restart_delay


def test_doubles_from_base_then_caps() -> None:
    assert [restart_delay(n, 10, 300) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]


def test_huge_failure_counts_stay_capped() -> None:
    assert restart_delay(10_000, 1, 60) == 60
