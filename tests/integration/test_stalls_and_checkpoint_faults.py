"""A stalled batch and an unwritable checkpoint on a live `kubestream run` (driver + 2 executors).

A user function that blocks until the test releases it: the status document and
/metrics show a typed stall and the slow task once the stall timeout passes, and
both clear once it returns. A checkpoint directory replaced by a file (root ignores
permissions, so a read-only directory would not stop the writes): the status
document names the path and the error, /metrics says so, batches fail naming it,
and once the directory is back the problem clears; a driver killed afterwards
resumes with state exactly a plain-Python count of the records read.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kubestream.transport import generate_keypair
from tests.integration.browser import chromium
from tests.integration.run_job import children

STALL_TIMEOUT = 3
TASK_THRESHOLD = 2
KEYS = 7

STALL_APP = """
import os
import time


def build(ssc, args):
    release = args[0]

    def wait_for_release(x):
        while not os.path.exists(release):
            time.sleep(0.05)
        return x

    ssc.rate_stream(20).map(wait_for_release).foreach_rdd(lambda rdd: rdd.count())
"""

STATE_APP = f"""
import json
import os


def total(values, old):
    count, added = old or (0, 0)
    return (count + len(values), added + sum(values))


def build(ssc, args):
    out = args[0]

    def save(batch_time, rdd):
        state = {{str(k): list(v) for k, v in rdd.collect()}}
        staging = os.path.join(out, f".state-{{batch_time}}.tmp")
        with open(staging, "w") as f:
            json.dump(state, f)
        os.replace(staging, os.path.join(out, f"state-{{batch_time}}.json"))

    pairs = ssc.rate_stream(100).map(lambda x: (x % {KEYS}, x))
    pairs.update_state_by_key(total).foreach_rdd(save)
"""


@dataclass
class Live:
    process: subprocess.Popen[str]
    url: str
    lines: list[str]

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "api/v1/status?batches=50", timeout=10) as reply:
            doc: dict[str, Any] = json.load(reply)
            return doc

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "metrics", timeout=10) as reply:
            text = reply.read().decode()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if not sample.labels
        }

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 90) -> None:
    """Wait for a condition of the live job; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@contextmanager
def live_job(
    app: Path, flags: list[str], args: list[str], env: dict[str, str] | None = None
) -> Iterator[Live]:
    """`kubestream run APP --executors 2 --batch-interval 0.5 --ui-port 0 FLAGS -- ARGS`,
    stopped with SIGTERM at the end (or killed, when the test killed it already)."""
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
            "0.5",
            "--ui-port",
            "0",
            *flags,
            "--",
            *args,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "KUBESTREAM_LOG_LEVEL": "INFO", **(env or {})},
    )
    assert process.stderr is not None
    lines = [process.stderr.readline()]
    match = re.search(r"Streaming UI at (http://\S+/)", lines[0])
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        assert match, f"no UI address: {lines[0]!r}"
        yield Live(process, match.group(1), lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(10)
        process.stderr.close()


def test_a_task_that_never_returns_is_a_stall_until_it_returns(tmp_path: Path) -> None:
    app = tmp_path / "stall_app.py"
    app.write_text(STALL_APP)
    release = tmp_path / "release"
    flags = [
        "--stall-timeout",
        str(STALL_TIMEOUT),
        "--task-duration-threshold",
        str(TASK_THRESHOLD),
    ]
    with live_job(app, flags, [str(release)]) as job:
        wait_for(lambda: job.status()["stall"] is not None, "a stall in the status document")
        doc = job.status()
        stall = doc["stall"]
        assert stall["kind"] == "tasks_running"
        assert stall["timeout"] == STALL_TIMEOUT
        assert stall["seconds_without_progress"] >= STALL_TIMEOUT
        running = [b for b in doc["batches"] if b["state"] == "processing"]
        assert [b["batch_time"] for b in running] == [stall["batch_time"]]
        assert stall["tasks"] and {t["executor_id"] for t in stall["tasks"]} <= {
            e["id"] for e in doc["executors"]
        }
        assert f"batch {stall['batch_time']} has made no progress" in stall["message"]
        assert doc["slow_tasks"], "tasks running past the threshold are listed"
        assert all(t["running_seconds"] > TASK_THRESHOLD for t in doc["slow_tasks"])
        metrics = job.metrics()
        assert metrics["kubestream_batch_stalled"] == 1
        assert metrics["kubestream_batch_seconds_without_progress"] >= STALL_TIMEOUT
        assert metrics["kubestream_slow_tasks_running"] >= 1
        # Counted and logged by the monitor's next check (every second at most).
        wait_for(
            lambda: (
                (m := job.metrics())["kubestream_batch_stalls_total"] >= 1
                and m["kubestream_slow_tasks_total"] >= 1
            ),
            "the stall and the slow tasks counted",
        )
        wait_for(lambda: "stalled: batch" in job.stderr, "the stall in the log")
        page = chromium(job.url, "--dump-dom")
        assert page.returncode == 0, page.stderr[-2000:]
        shown = re.findall(r'<p class="problem" data-problem-kind="(\w+)">([^<]*)</p>', page.stdout)
        assert {kind for kind, _ in shown} == {"stall", "slow_tasks"}, shown
        assert f"batch {stall['batch_time']} has made no progress" in dict(shown)["stall"]

        release.touch()
        wait_for(
            lambda: (s := job.status())["stall"] is None and s["totals"]["completed"] >= 3,
            "the stall to clear and batches to complete",
        )
        assert job.metrics()["kubestream_batch_stalled"] == 0
        assert job.status()["totals"]["failed"] == 0
        wait_for(lambda: "is no longer stalled" in job.stderr, "the stall's end in the log")
        assert "longer than task_duration_threshold" in job.stderr
    assert job.process.returncode == 0, job.stderr[-3000:]


def reference(n: int) -> dict[str, list[int]]:
    """update_state_by_key's (count, sum) per key after reading 0 .. n-1."""
    return {str(k): [len(range(k, n, KEYS)), sum(range(k, n, KEYS))] for k in range(min(n, KEYS))}


def test_an_unwritable_checkpoint_is_shown_and_recovery_after_it_is_exact(tmp_path: Path) -> None:
    app = tmp_path / "state_app.py"
    app.write_text(STATE_APP)
    checkpoint, aside, out = tmp_path / "checkpoint", tmp_path / "aside", tmp_path / "out"
    out.mkdir()
    public, secret = generate_keypair()
    env = {"KUBESTREAM_CURVE_PUBLIC_KEY": public, "KUBESTREAM_CURVE_SECRET_KEY": secret}
    flags = ["--checkpoint", str(checkpoint), "--checkpoint-interval", "1"]
    with live_job(app, flags, [str(out)], env) as job:
        wait_for(
            lambda: (
                (s := job.status())["totals"]["completed"] >= 4
                and s["checkpoint"]["last_written"] is not None
            ),
            "batches with checkpoints",
        )
        assert job.status()["checkpoint"]["problem"] is None
        assert job.metrics()["kubestream_checkpoint_problem"] == 0

        checkpoint.rename(aside)
        checkpoint.write_text("a file where the checkpoint directory was\n")
        wait_for(
            lambda: (
                (s := job.status())["checkpoint"]["problem"] is not None
                and s["totals"]["failed"] >= 2
            ),
            "the checkpoint problem and failed batches",
        )
        doc = job.status()
        problem = doc["checkpoint"]["problem"]
        assert doc["checkpoint"]["directory"] == str(checkpoint)
        assert problem["path"].startswith(f"{checkpoint}/")
        assert "NotADirectoryError" in problem["error"], problem
        assert problem["failures"] >= 2
        failed = [b for b in doc["batches"] if b["state"] == "failed"]
        assert any(f"cannot write {checkpoint}/" in e for b in failed for e in b["errors"])
        metrics = job.metrics()
        assert metrics["kubestream_checkpoint_problem"] == 1
        assert metrics["kubestream_checkpoint_write_failures_total"] >= 2
        shown = json.dumps(doc) + job.stderr
        assert secret not in shown

        checkpoint.unlink()
        aside.rename(checkpoint)
        wait_for(lambda: job.status()["checkpoint"]["problem"] is None, "the problem to clear")
        assert job.metrics()["kubestream_checkpoint_problem"] == 0
        completed = job.status()["totals"]["completed"]
        wait_for(
            lambda: job.status()["totals"]["completed"] >= completed + 4, "batches after the fault"
        )
        for pid in [job.process.pid, *children(job.process.pid)]:
            os.kill(pid, signal.SIGKILL)
        job.process.wait(30)
    assert "checkpoints are written again" in job.stderr
    assert job.stderr.count("cannot write checkpoint") < problem["failures"]

    with live_job(app, [*flags, "--duration", "5"], [str(out)], env) as again:
        again.process.wait(120)
    assert again.process.returncode == 0, again.stderr[-3000:]
    assert "recovered from checkpoint" in again.stderr
    assert secret not in again.stderr

    states = sorted(out.glob("state-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    assert len(states) >= 10
    read = 0
    for path in states:
        state = json.loads(path.read_text())
        n = sum(count for count, _ in state.values())
        assert state == reference(n), f"{path.name} is not the state of records 0..{n - 1}"
        assert n >= read, f"{path.name} holds fewer records than the batch before it"
        read = n
