"""`kubestream decommission`: asks a driver's HTTP API to drain an executor and waits."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from kubestream.errors import ConfigError


def _call(request: urllib.request.Request) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        raise ConfigError(f"the driver answered {exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise ConfigError(f"cannot reach the driver at {request.full_url}: {exc.reason}") from None


def decommission(
    url: str, executor_id: str, token: str, timeout: float, read_token: str = ""
) -> str:
    """Starts the drain (``token``: the change token), then returns its outcome,
    `decommissioned` or `failed: <why>`, read with ``read_token`` from the status."""
    base = url.rstrip("/")
    _call(
        urllib.request.Request(
            f"{base}/api/v1/executors/{quote(executor_id, safe='')}/decommission",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _call(
            urllib.request.Request(
                f"{base}/api/v1/status?batches=0",
                headers={"Authorization": f"Bearer {read_token}"} if read_token else {},
            )
        )
        outcome: str = status.get("decommissions", {}).get(executor_id, "draining")
        if outcome != "draining":
            return outcome
        time.sleep(0.5)
    raise ConfigError(f"executor {executor_id} was still draining after {timeout:.0f} s")
