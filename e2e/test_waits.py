"""The waits themselves, without a cluster: a timeout names what it waited for
and the last thing it saw, and API errors count as 'not yet'."""

from __future__ import annotations

import itertools

import pytest
from kubernetes.client.exceptions import ApiException

from waits import WaitTimeoutError, field, wait_for, wait_for_field


def test_timeout_reports_what_was_last_seen() -> None:
    phases = itertools.chain(["Pending", "ContainerCreating"], itertools.repeat("CrashLoopBackOff"))
    with pytest.raises(WaitTimeoutError) as err:
        wait_for("pod p Running", lambda: (False, next(phases)), timeout=0.3, interval=0.05)
    assert "waiting for pod p Running" in str(err.value)
    assert "last seen: CrashLoopBackOff" in str(err.value)


def test_api_errors_are_retried_and_reported() -> None:
    calls = itertools.count()

    def probe() -> tuple[bool, object]:
        if next(calls) < 2:
            raise ApiException(status=503, reason="Service Unavailable")
        return True, "ok"

    assert wait_for("the API", probe, timeout=5, interval=0.01) == "ok"
    with pytest.raises(WaitTimeoutError, match="API error 404: Not Found"):
        wait_for(
            "a gone object",
            lambda: (_ for _ in ()).throw(ApiException(status=404, reason="Not Found")),
            timeout=0.1,
            interval=0.02,
        )


def test_wait_for_field_follows_dotted_paths_into_lists() -> None:
    pod = {"status": {"containerStatuses": [{"restartCount": 1}]}}
    assert field(pod, "status.containerStatuses.0.restartCount") == 1
    assert field(pod, "status.missing.deeper") is None
    got = wait_for_field("pod", lambda: pod, "status.containerStatuses.0.restartCount", 1)
    assert got is pod
    with pytest.raises(WaitTimeoutError, match=r"status.phase=None"):
        wait_for_field("pod", lambda: pod, "status.phase", "Running", timeout=0.1)
