"""Talks to the running driver's HTTP API: its status document, and drains.

The driver serves ``GET /api/v1/status`` on its UI port (schema in
docs/status-api.md). ``batch_fields`` turns a document into the fields behind
the Batch Delay and Last Batch columns and ``executor_report`` into what the
planner needs to drain executors on scale-down (both pure); ``fetch`` does the
HTTP GET and ``decommission`` the authenticated POST that starts a drain, each
with a short timeout. The reconciler calls them while the driver runs; a driver
that does not answer leaves the last known values in place.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kubestream_operator.plan import DriverReport, iso

# Enough batches for the autoscaler's stabilization window at short batch intervals.
STATUS_PATH = "/api/v1/status?batches=200"


def _seconds(value: float) -> str:
    if value < 10:
        return f"{value:.2f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds}s"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def batch_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """status.batchDelay (total delay of the newest finished batch) and status.lastBatchTime."""
    if doc.get("api_version") != "v1":
        return {}
    fields: dict[str, Any] = {}
    last = _number(doc.get("last_completed_batch_time"))
    if last is not None:
        fields["lastBatchTime"] = iso(last / 1000)
    delays = (
        _number(b.get("total_delay"))
        for b in doc.get("batches") or []
        if isinstance(b, Mapping) and b.get("state") in ("completed", "failed")
    )
    delay = next((d for d in delays if d is not None), None)
    if delay is None:
        delay = _number((doc.get("summary") or {}).get("avg_total_delay"))
    if delay is not None:
        fields["batchDelay"] = _seconds(delay)
    return fields


def executor_report(doc: Mapping[str, Any]) -> DriverReport | None:
    """The executors registered with the driver and the outcome of each drain asked for."""
    if doc.get("api_version") != "v1":
        return None
    registered = frozenset(
        str(e["id"]) for e in doc.get("executors") or [] if isinstance(e, Mapping) and "id" in e
    )
    outcomes = doc.get("decommissions")
    if not isinstance(outcomes, Mapping):
        outcomes = {}
    return DriverReport(registered, {str(k): str(v) for k, v in outcomes.items()})


def _where(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def fetch(host: str, port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    """The driver's status document, or None if it cannot be had right now."""
    try:
        with urllib.request.urlopen(_where(host, port) + STATUS_PATH, timeout=timeout) as r:
            doc = json.load(r)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def decommission(host: str, port: int, executor_id: str, token: str, timeout: float = 2.0) -> str:
    """Ask the driver to drain an executor: "" once it has begun, else why not.

    The reason never holds the token: it travels in a header, and neither the
    URL nor the driver's answer repeats it.
    """
    url = f"{_where(host, port)}/api/v1/executors/{quote(executor_id, safe='')}/decommission"
    request = urllib.request.Request(
        url, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return ""
    except urllib.error.HTTPError as err:
        try:
            said = json.load(err).get("error") or err.reason
        except (ValueError, AttributeError):
            said = err.reason
        return f"the driver answered {err.code}: {said}"
    except (OSError, ValueError) as err:
        return f"the driver did not answer: {err}"
