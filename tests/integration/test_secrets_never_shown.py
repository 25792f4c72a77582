"""No secret in anything a job emits: a real `kubestream run` (driver and two executor
processes) whose secrets hold known marker values, and a scan of everything it put out.

The markers stand for what a job's Secret references deliver as variables: an
application credential the job's code uses on executors, the CURVE secret key, the
UI's read and change tokens, and the scrape token. The scan covers the output of every
process (DEBUG logs, one batch failing on purpose so a traceback is logged), the status
document, the driver's and executors' /metrics, and the page's HTML and JS.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from kubestream.driver.api_auth import api_token, read_token
from kubestream.transport import generate_keypair

APP = """
import os
from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    password = os.environ["APP_PASSWORD"]

    def use(x: int) -> int:
        if x == 7:
            raise RuntimeError("deliberate failure, for the secrets scan")
        return x + len(password)  # the credential travels to the executors in the closure

    ssc.rate_stream(50).map(use).foreach_rdd(lambda rdd: rdd.count())
"""


def fetch(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(reply.read().decode())


def test_no_secret_reaches_logs_status_metrics_or_the_page(tmp_path: Path) -> None:
    public, secret = generate_keypair()
    markers = {
        "application credential": "marker-app-password-6f1c0e",
        "CURVE secret key": secret,
        "read token": read_token(secret),
        "change token": api_token(secret),
        "scrape token": "marker-scrape-token-93ab7d",
    }
    app = tmp_path / "secret_app.py"
    app.write_text(APP)
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "APP_PASSWORD": markers["application credential"],
        "KUBESTREAM_CURVE_PUBLIC_KEY": public,
        "KUBESTREAM_CURVE_SECRET_KEY": secret,
        "KUBESTREAM_UI_SCRAPE_TOKEN": markers["scrape token"],
        "KUBESTREAM_UI_READ_ACCESS": "token",
        "KUBESTREAM_LOG_LEVEL": "DEBUG",
        "KUBESTREAM_ON_BATCH_FAILURE": "continue",
    }
    command = [sys.executable, "-m", "kubestream", "run", str(app), "--ui-port", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--batch-interval", "0.5", "--duration", "30"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    emitted: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"Streaming UI at (http://\S+/)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        url = found.group(1)
        while '"state": "failed"' not in (
            status := fetch(url + "api/v1/status?batches=1000", markers["read token"])
        ):
            assert time.monotonic() < deadline, "no failed batch yet"
            time.sleep(0.2)
        emitted["status document"] = status
        emitted["driver /metrics"] = fetch(url + "metrics", markers["scrape token"])
        emitted["page"] = fetch(url, markers["read token"])
        emitted["page script"] = fetch(url + "app.js", markers["read token"])
        for n, metrics in enumerate(
            sorted(set(re.findall(r"http://\S+/metrics", log.read_text())))
        ):
            # Reading is closed on executors too: the scrape token reads their /metrics.
            emitted[f"executor /metrics {n}"] = fetch(metrics, markers["scrape token"])
        # The login URL carries the read token; the answer and the logs must not repeat it.
        where = urlsplit(url)
        login = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
        try:
            login.request("GET", "/?token=" + markers["read token"])
            answer = login.getresponse()
            assert answer.status == 303
            emitted["login answer"] = answer.read().decode() + str(answer.getheader("Location"))
        finally:
            login.close()
    finally:
        proc.terminate()
        proc.wait(60)
    emitted["every process's output"] = log.read_text()
    assert "deliberate failure, for the secrets scan" in emitted["every process's output"]
    assert sum(k.startswith("executor /metrics") for k in emitted) == 2, emitted.keys()
    leaks = [
        f"{what} in {where}"
        for what, value in markers.items()
        for where, text in emitted.items()
        if value in text
    ]
    assert not leaks, leaks
