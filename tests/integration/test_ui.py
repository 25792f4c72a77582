"""The driver's UI port and the executors' /metrics on a live job, and the page in real Chromium.

One `kubestream run` (driver + 2 executor processes) runs a rate stream with a
shuffle and a socket receiver fed by this test; every ninth batch fails on
purpose, so the page has a failed batch to show. Tests read it over real HTTP;
the Chromium test loads the page, checks the plots and the batch table in the
DOM after the page's JS ran, and saves a screenshot under artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.browser import chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
BATCH_INTERVAL = 0.5
FAIL_EVERY = 9

APP = f"""
import operator
from kubestream import StreamingContext


def build(ssc: StreamingContext, args: list[str]) -> None:
    numbers = ssc.rate_stream(2000)
    numbers.map(lambda x: (x % 10, 1)).reduce_by_key(operator.add).foreach_rdd(
        lambda rdd: rdd.collect()
    )
    lines = ssc.socket_text_stream("127.0.0.1", int(args[0]))

    def fail_now_and_then(batch_time: int, rdd) -> None:
        rdd.count()
        if (batch_time // {round(BATCH_INTERVAL * 1000)}) % {FAIL_EVERY} == 4:
            raise RuntimeError("deliberate failure, for the UI test")

    lines.flat_map(str.split).count().foreach_rdd(fail_now_and_then)
    ssc.text_file_stream(args[1]).foreach_rdd(lambda rdd: rdd.count())  # a typo in a path
"""


class LineServer:
    """A TCP server that sends lines to whoever connects (the job's socket receiver)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    while not self._stop.is_set():
                        conn.sendall(b"to be or not to be\n" * 20)
                        self._stop.wait(0.02)
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@dataclass
class Job:
    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as reply:
                return reply.status, reply.headers["Content-Type"], reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()

    def status(self, batches: int = 100) -> dict[str, Any]:
        code, _, body = self.get(f"api/v1/status?batches={batches}")
        assert code == 200, body
        doc: dict[str, Any] = json.loads(body)
        return doc

    def executor_metrics_urls(self) -> list[str]:
        return sorted({m for line in self.stderr for m in re.findall(r"http://\S+/metrics", line)})


def wait_for(predicate: Any, what: str, timeout: float = 60) -> None:
    """Wait for a condition of the live job; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    app = tmp_path_factory.mktemp("ui") / "ui_app.py"
    app.write_text(APP)
    server = LineServer()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestream",
            "run",
            str(app),
            "--executors",
            "2",
            "--batch-interval",
            str(BATCH_INTERVAL),
            "--ui-port",
            "0",
            "--duration",
            "240",
            "--",
            str(server.port),
            str(app.parent / "no-such-directory"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "KUBESTREAM_LOG_LEVEL": "INFO"},
    )
    assert process.stderr is not None
    lines: list[str] = []
    first = process.stderr.readline()
    lines.append(first)
    match = re.search(r"Streaming UI at (http://\S+/)", first)
    assert match, f"kubestream run did not print the UI address first: {first!r}"
    running = Job(process, match.group(1), lines)
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_for(
            lambda: (
                (s := running.status())["totals"]["failed"] >= 1 and s["totals"]["completed"] >= 12
            ),
            "12 batches, one of them failed",
        )
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60)
        finally:
            if process.poll() is None:
                process.kill()
            reader.join(10)
            process.stderr.close()
            server.close()
        assert code == 0, "".join(lines[-30:])


def test_status_lists_batches_executors_and_the_receiver(job: Job) -> None:
    doc = job.status(batches=10)
    assert doc["api_version"] == "v1"
    assert doc["job"] == "ui_app"
    assert doc["state"] == "active"
    assert doc["batch_interval"] == BATCH_INTERVAL
    assert len(doc["batches"]) == 10
    times = [b["batch_time"] for b in doc["batches"]]
    assert times == sorted(times, reverse=True)
    assert all(t % round(BATCH_INTERVAL * 1000) == 0 for t in times)
    completed = [b for b in doc["batches"] if b["state"] in ("completed", "failed")]
    assert completed and all(b["processing_time"] is not None for b in completed)
    (receiver,) = doc["receivers"]
    assert receiver["state"] == "started"
    assert receiver["executor_id"] in ("exec-1", "exec-2")
    streams = {k for b in completed for k, n in b["records_per_stream"].items() if n > 0}
    assert len(streams) == 2 and str(receiver["stream_id"]) in streams
    failed = [b for b in job.status(batches=1000)["batches"] if b["state"] == "failed"]
    assert failed and all("deliberate failure" in b["errors"][0] for b in failed)
    assert all((b["batch_time"] // 500) % FAIL_EVERY == 4 for b in failed)
    assert [e["id"] for e in doc["executors"]] == ["exec-1", "exec-2"]
    assert all(e["address"].startswith("tcp://127.0.0.1:") for e in doc["executors"])
    files = [i for i in doc["inputs"] if i["kind"] == "FileInputDStream"]
    assert len(files) == 1 and "no-such-directory' does not exist" in files[0]["problem"]
    warnings = [line for line in job.stderr if "no-such-directory' does not exist" in line]
    assert 1 <= len(warnings) <= 2, "a warning at start, then at most one a minute"
    summary = doc["summary"]
    assert summary["batches"] >= 12
    assert 0 < summary["processing_ratio"] < 1
    assert summary["input_rate"] > 0


def test_bad_requests_get_json_errors(job: Job) -> None:
    assert job.get("api/v1/status?batches=lots")[0] == 400
    code, kind, body = job.get("nope")
    assert (code, kind) == (404, "application/json")
    assert "nope" in json.loads(body)["error"]


def metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_driver_metrics_on_the_ui_port(job: Job) -> None:
    code, kind, text = job.get("metrics")
    assert code == 200 and kind.startswith("text/plain")
    values = metrics(text)
    assert values[("kubestream_executors_registered", ())] == 2
    assert values[("kubestream_receivers_active", ())] == 1
    problems = {k[1]: v for k, v in values.items() if k[0] == "kubestream_input_problem"}
    assert sorted(problems.values()) == [1]
    assert values[("kubestream_batches_completed_total", ())] >= 12
    assert values[("kubestream_batches_failed_total", ())] >= 1
    assert values[("kubestream_batch_processing_seconds_count", ())] >= 12
    inputs = [v for k, v in values.items() if k[0] == "kubestream_input_records_total"]
    # The rate and socket streams brought records; the directory that is not there none.
    assert len(inputs) == 3 and sorted(inputs)[0] == 0 and all(v > 0 for v in sorted(inputs)[1:])
    rates = [v for k, v in values.items() if k[0] == "kubestream_input_rate_records_per_second"]
    assert len(rates) == 3
    assert values[("kubestream_last_completed_batch_timestamp_seconds", ())] > 1e9
    assert all(name.startswith("kubestream_") for name, _ in values)


def test_each_executor_serves_its_own_metrics(job: Job) -> None:
    urls = job.executor_metrics_urls()
    assert len(urls) == 2, urls
    finished = received = 0.0
    ids = set()
    for url in urls:
        with urllib.request.urlopen(url, timeout=10) as reply:
            values = metrics(reply.read().decode())
        ids |= {dict(k[1])["executor_id"] for k in values if k[0] == "kubestream_executor_info"}
        finished += values[("kubestream_executor_tasks_total", (("state", "finished"),))]
        received += sum(
            v for k, v in values.items() if k[0] == "kubestream_executor_received_records_total"
        )
        assert values[("kubestream_executor_task_seconds_count", ())] >= 0
        assert ("kubestream_executor_block_bytes", ()) in values
    assert ids == {"exec-1", "exec-2"}
    assert finished > 0
    assert received > 0


class PageDom(HTMLParser):
    """Counts what the page drew: points per plot, batch rows by state, executor rows."""

    def __init__(self) -> None:
        super().__init__()
        self.points: dict[str, int] = {}
        self.failed_points = 0
        self.rows: list[str] = []
        self.executors: list[str] = []
        self.receivers = 0
        self.input_problems = 0
        self.loaded = 0
        self._series: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.loaded = int(a.get("data-loaded") or 0)
        elif tag == "svg" and a.get("data-series"):
            self._series = a["data-series"]
            self.points[self._series or ""] = 0
        elif tag == "circle" and self._series and "point" in (a.get("class") or ""):
            self.points[self._series] += 1
            self.failed_points += "failed" in (a.get("class") or "")
        elif tag == "tr" and a.get("data-batch-time"):
            self.rows.append(a.get("data-state") or "")
        elif tag == "tr" and a.get("data-executor"):
            self.executors.append(a["data-executor"] or "")
        elif tag == "tr" and a.get("data-stream"):
            self.receivers += 1
        elif tag == "tr" and a.get("data-input"):
            self.input_problems += a.get("data-problem") == "yes"

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._series = None


def test_the_page_draws_the_timelines_and_tables_in_chromium(job: Job) -> None:
    code, kind, html = job.get("")
    assert code == 200 and kind.startswith("text/html")
    assert "http" not in re.sub(r'href="[^"]*"|xmlns="[^"]*"', "", html), "no external resource"
    result = chromium(job.url, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = PageDom()
    dom.feed(result.stdout)
    assert dom.loaded >= 1, "the page's script never rendered the status"
    assert set(dom.points) == {"input_rate", "scheduling_delay", "processing_time", "total_delay"}
    for series, count in dom.points.items():
        assert count >= 12, (series, count)
    assert dom.failed_points >= 4, "failed batches are not marked on the plots"
    assert len(dom.rows) >= 12
    assert "failed" in dom.rows and "completed" in dom.rows
    assert dom.executors == ["exec-1", "exec-2"]
    assert dom.receivers == 1
    assert dom.input_problems == 1
    assert "no-such-directory' does not exist" in result.stdout

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "ui-streaming.png"
    screenshot.unlink(missing_ok=True)
    result = chromium(job.url, f"--screenshot={screenshot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
