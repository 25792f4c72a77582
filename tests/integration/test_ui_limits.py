"""The driver's HTTP port answers every malformed request with a 4xx, logs failures through
logging, closes idle connections and bounds how many it serves at once."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubestream.driver.api_auth import Access
from kubestream.driver.ui.server import Actions, UIServer


def _status(limit: int) -> dict[str, Any]:
    return {"batches": list(range(limit))}


def _refuse(executor_id: str) -> None:
    raise AssertionError(f"no request may drain {executor_id}")


@pytest.fixture
def ui() -> Iterator[UIServer]:
    server = UIServer(
        _status,
        CollectorRegistry(),
        "127.0.0.1",
        0,
        Actions(_refuse),
        idle_timeout=2.0,
        max_connections=8,
        access=Access(read=None, change="right-token"),
    )
    yield server
    server.close()


def _request(
    ui: UIServer, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value.encode("utf-8"))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    "query",
    ["%D9%A3", "1" * 5000, "0" * 4999 + "5", "-1", "1001", "2%00", "%FF"],
    ids=["arabic-digit", "5000-digits", "zero-padded", "negative", "too-many", "nul", "not-utf8"],
)
def test_a_malformed_batches_parameter_is_a_400(ui: UIServer, query: str) -> None:
    status, body = _request(ui, "GET", "/api/v1/status?batches=" + query)
    assert status == 400
    assert "batches must be" in body["error"]


@pytest.mark.parametrize("token", ["r\u00e9ght-token", "\u00ff" * 64, "right-token\u2028"])
def test_a_non_ascii_authorization_is_a_401(ui: UIServer, token: str) -> None:
    status, body = _request(
        ui, "POST", "/api/v1/executors/e1/decommission", {"Authorization": "Bearer " + token}
    )
    assert status == 401
    assert "Bearer" in body["error"]


def test_a_failing_status_source_is_a_500_logged_through_logging(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(limit: int) -> dict[str, Any]:
        raise RuntimeError("status source broke")

    server = UIServer(broken, CollectorRegistry(), "127.0.0.1", 0)
    try:
        with caplog.at_level(logging.ERROR, logger="kubestream.driver.ui.server"):
            status, body = _request(server, "GET", "/api/v1/status")
    finally:
        server.close()
    assert status == 500
    assert "status source broke" not in json.dumps(body)
    assert any("status source broke" in (r.exc_text or "") for r in caplog.records)
    assert "Traceback" not in capsys.readouterr().err


def test_idle_connections_are_closed_and_excess_ones_refused(ui: UIServer) -> None:
    idle = [socket.create_connection(("127.0.0.1", ui.port)) for _ in range(8)]
    try:
        with socket.create_connection(("127.0.0.1", ui.port), timeout=5) as excess:
            assert excess.recv(1024).startswith(b"HTTP/1.1 503")
        deadline = time.monotonic() + 10
        for conn in idle:
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            assert conn.recv(1024) == b"", "an idle connection stayed open"
    finally:
        for conn in idle:
            conn.close()
    status, body = _request(ui, "GET", "/api/v1/status?batches=2")
    assert (status, body) == (200, {"batches": [0, 1]})
