"""Talks to the running driver's HTTP API: its status document, and drains.

The driver serves ``GET /api/v1/status`` on its UI port (schema in
docs/status-api.md). ``batch_fields`` turns a document into the fields behind
the Batch Delay and Last Batch columns, ``executor_report`` into what the
planner needs to drain executors on scale-down and the problems that make the
job Degraded, ``data_loss`` into status.dataLoss and ``data_loss_note`` into the
Event for new losses (all pure); ``fetch`` does the
HTTP GET and ``decommission`` the authenticated POST that starts a drain, each
with a short timeout. The reconciler calls them while the driver runs; a driver
that does not answer leaves the last known values in place.
"""

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubestream_operator.plan import DriverReport, Note, iso

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
    """The executors registered with the driver, the outcome of each drain asked for, and
    the problems it reports (driver_problems)."""
    if doc.get("api_version") != "v1":
        return None
    registered = frozenset(
        str(e["id"]) for e in doc.get("executors") or [] if isinstance(e, Mapping) and "id" in e
    )
    outcomes = doc.get("decommissions")
    if not isinstance(outcomes, Mapping):
        outcomes = {}
    return DriverReport(
        registered, {str(k): str(v) for k, v in outcomes.items()}, driver_problems(doc)
    )


def driver_problems(doc: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(reason, message) for the Degraded condition: a stalled batch (BatchStalled) and
    checkpoints that cannot be written (CheckpointFailing). Each message opens with
    what stays the same while the problem lasts, then a colon and the details."""
    problems: list[tuple[str, str]] = []
    stall = doc.get("stall")
    if isinstance(stall, Mapping):
        problems.append(
            (
                "BatchStalled",
                f"the driver reports batch {stall.get('batch_time')} stalled "
                f"({stall.get('kind')}): {stall.get('message')}",
            )
        )
    checkpoint = doc.get("checkpoint")
    problem = checkpoint.get("problem") if isinstance(checkpoint, Mapping) else None
    if isinstance(checkpoint, Mapping) and isinstance(problem, Mapping):
        problems.append(
            (
                "CheckpointFailing",
                f"the driver cannot write checkpoints to {checkpoint.get('directory')}: "
                f"{problem.get('path')}: {problem.get('error')} ({problem.get('failures')} "
                "failed writes; batches fail until it can: free space on the checkpoint "
                "volume or fix its permissions)",
            )
        )
    return tuple(problems)


def data_loss(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """status.dataLoss: how often the running driver's inputs found records deleted before
    they were read and skipped them (Kafka with fail_on_data_loss=False), how many records,
    and the latest loss (topic, partition, offsets); None when there was none."""
    if doc.get("api_version") != "v1":
        return None
    events = records = 0
    last, last_time = "", -1.0
    for view in doc.get("inputs") or []:
        if not isinstance(view, Mapping):
            continue
        count = _number(view.get("data_loss_events"))
        if not count:
            continue
        events += int(count)
        records += int(_number(view.get("lost_records")) or 0)
        when = _number(view.get("last_data_loss_time")) or 0.0
        if when >= last_time:
            last, last_time = str(view.get("last_data_loss") or ""), when
    if not events:
        return None
    return {"events": events, "lostRecords": records, "last": last}


def data_loss_note(
    recorded: Mapping[str, Any] | None, now: Mapping[str, Any] | None
) -> Note | None:
    """A Warning Event when the driver reports losses that status.dataLoss (``recorded``)
    does not hold yet. A restarted driver counts from zero: fewer than recorded are new."""
    if now is None:
        return None
    seen = int((recorded or {}).get("events") or 0)
    new = now["events"] - seen if now["events"] >= seen else now["events"]
    if new <= 0:
        return None
    return Note(
        "Warning",
        "DataLoss",
        f"inputs skipped records deleted before they were read ({new} new, "
        f"{now['lostRecords']} records in all since the driver started); latest: {now['last']}",
    )


@dataclass(frozen=True)
class DriverAPI:
    """How to reach one driver's UI port: its pod address, and for HTTPS the CA
    certificates (PEM) that must have signed its certificate and the name it must
    carry (the driver Service's DNS name: the pod's address is in no certificate)."""

    host: str
    port: int
    ca: str | None = None
    server_name: str = ""


class _VerifiedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address, verifying the certificate against a name, not the address."""

    def __init__(self, api: DriverAPI, timeout: float) -> None:
        context = ssl.create_default_context(cadata=api.ca)
        super().__init__(api.host, api.port, timeout=timeout, context=context)
        self._context = context
        self._server_name = api.server_name

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=self._server_name)
        except BaseException:
            raw.close()
            raise


def _request(
    api: DriverAPI, method: str, path: str, token: str, timeout: float
) -> tuple[int, bytes]:
    connection: http.client.HTTPConnection
    if api.ca is None:
        connection = http.client.HTTPConnection(api.host, api.port, timeout=timeout)
    else:
        connection = _VerifiedHTTPS(api, timeout)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


Tokens = str | tuple[str, ...]
"""A bearer token, or several to try in turn: the one of the job's current token
generation first, then the previous one, which a pod whose kubelet has not yet
updated its copy of the Secret still wants."""


def _authorized(
    api: DriverAPI, method: str, path: str, tokens: Tokens, timeout: float
) -> tuple[int, bytes]:
    """``_request`` with each of ``tokens`` until one is not refused (401)."""
    choices = (tokens,) if isinstance(tokens, str) else tokens or ("",)
    for token in choices[:-1]:
        code, body = _request(api, method, path, token, timeout)
        if code != 401:
            return code, body
    return _request(api, method, path, choices[-1], timeout)


def fetch(api: DriverAPI, token: Tokens = "", timeout: float = 2.0) -> dict[str, Any] | None:
    """The driver's status document (``token``: the read token, or tokens to try in
    turn), or None if it cannot be had right now: no answer, a refusal, or a
    certificate that does not verify."""
    try:
        code, body = _authorized(api, "GET", STATUS_PATH, token, timeout)
        doc = json.loads(body) if code == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return doc if isinstance(doc, dict) else None


def decommission(api: DriverAPI, executor_id: str, token: Tokens, timeout: float = 2.0) -> str:
    """Ask the driver to drain an executor (``token``: the change token, or tokens to
    try in turn): "" once it has begun, else why not.

    The reason never holds the token: it travels in a header, and neither the
    URL nor the driver's answer repeats it.
    """
    path = f"/api/v1/executors/{quote(executor_id, safe='')}/decommission"
    try:
        code, body = _authorized(api, "POST", path, token, timeout)
    except (OSError, ValueError, http.client.HTTPException) as err:
        return f"the driver did not answer: {err}"
    if code < 300:
        return ""
    try:
        said = json.loads(body).get("error") or http.client.responses.get(code, "")
    except (ValueError, AttributeError):
        said = http.client.responses.get(code, "")
    return f"the driver answered {code}: {said}"
