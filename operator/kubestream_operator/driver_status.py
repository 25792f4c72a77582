"""Reads the driver's status document into the job's status.

The driver serves ``GET /api/v1/status`` on its UI port (schema in
docs/status-api.md). ``batch_fields`` turns a document into the fields behind
the Batch Delay and Last Batch columns (pure); ``fetch`` does the HTTP GET with
a short timeout. The reconciler calls both while the driver runs; a driver that
does not answer leaves the last known values in place.
"""

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

from kubestream_operator.plan import iso

STATUS_PATH = "/api/v1/status?batches=10"


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


def fetch(host: str, port: int, timeout: float = 2.0) -> dict[str, Any] | None:
    """The driver's status document, or None if it cannot be had right now."""
    where = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{where}:{port}{STATUS_PATH}", timeout=timeout) as r:
            doc = json.load(r)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
