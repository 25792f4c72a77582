"""`kubestream run` and the UI port, and JSON logs, as a user sees them on stderr."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubestream.transport import generate_keypair

APP = """
import logging
from kubestream import StreamingContext

log = logging.getLogger("ui_cli_app")


def shout(x: int) -> int:
    if x == 0:
        log.warning("first record seen on an executor")
    return x


def build(ssc: StreamingContext, args: list[str]) -> None:
    ssc.rate_stream(100).map(shout).foreach_rdd(
        lambda rdd: log.warning("batch of %d records", rdd.count())
    )
"""


def run(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    app = tmp_path / "ui_cli_app.py"
    app.write_text(APP)
    result = subprocess.run(
        [sys.executable, "-m", "kubestream", "run", str(app), "--duration", "2", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    return result.returncode, result.stderr + result.stdout


def ui_port(output: str) -> int:
    match = re.search(r"^kubestream: Streaming UI at http://127\.0\.0\.1:(\d+)/$", output, re.M)
    assert match, output[:500]
    return int(match.group(1))


def test_json_logs_carry_job_batch_executor_and_task_and_never_the_secret(
    tmp_path: Path,
) -> None:
    public, secret = generate_keypair()
    code, output = run(
        tmp_path,
        "--log-format",
        "json",
        "--ui-port",
        "0",
        env={"KUBESTREAM_CURVE_PUBLIC_KEY": public, "KUBESTREAM_CURVE_SECRET_KEY": secret},
    )
    assert code == 0, output
    assert secret not in output
    ui_port(output)
    lines: list[dict[str, Any]] = [json.loads(line) for line in output.splitlines()[1:]]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    driver = [line for line in lines if "executor_id" not in line]
    assert driver and all(line["job"] == "ui_cli_app" for line in driver)
    batches = [line for line in lines if line["message"].startswith("batch of ")]
    assert batches and all(line["batch_time"] % 1000 == 0 for line in batches)
    (on_executor,) = [
        line for line in lines if line["message"] == "first record seen on an executor"
    ]
    assert on_executor["executor_id"] in ("exec-1", "exec-2")
    assert isinstance(on_executor["task_id"], int)


def test_a_taken_ui_port_moves_to_the_next_free_one(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, output = run(tmp_path, env={"KUBESTREAM_UI_PORT": str(port)})
    assert code == 0, output
    assert port < ui_port(output) < port + 16
    assert f"UI port {port} is in use" in output
