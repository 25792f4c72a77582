"""The kubestream command as a user runs it: real processes, clear one-line errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORDCOUNT = ROOT / "examples" / "wordcount.py"


def kubestream(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubestream", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last, last


def test_missing_application_file(tmp_path: Path) -> None:
    result = kubestream("run", str(tmp_path / "nope.py"), "--duration", "1")
    assert_one_line_error(result, "nope.py", "does not exist")


def test_application_without_build_function(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("def main(ssc, args):\n    pass\n")
    result = kubestream("run", str(app), "--duration", "1")
    assert_one_line_error(result, "no function 'build'")


def test_bad_flag_value() -> None:
    result = kubestream("run", str(WORDCOUNT), "--batch-interval", "fast")
    assert_one_line_error(result, "--batch-interval", "fast")


def test_bad_value_from_environment() -> None:
    result = kubestream("run", str(WORDCOUNT), env={"KUBESTREAM_EXECUTORS": "zero"})
    assert_one_line_error(result, "--executors", "zero")


def test_driver_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = kubestream(
            "driver",
            "--app",
            str(WORDCOUNT),
            "--host",
            "127.0.0.1",
            "--driver-port",
            str(port),
            env={"KUBESTREAM_CURVE_PUBLIC_KEY": "x" * 40, "KUBESTREAM_CURVE_SECRET_KEY": "y" * 40},
        )
    assert_one_line_error(result, str(port))


def test_driver_without_keys_says_which_variables() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESTREAM_CURVE")}
    result = subprocess.run(
        [sys.executable, "-m", "kubestream", "driver", "--app", str(WORDCOUNT)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert_one_line_error(result, "KUBESTREAM_CURVE_PUBLIC_KEY")


def test_wordcount_in_local_mode_matches_reference(tmp_path: Path) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    texts = [f"the quick brown fox {i} jumps over the lazy dog {i % 3}" for i in range(12)]

    def feed() -> None:
        time.sleep(2.5)
        for i, text in enumerate(texts):
            staged = inbox / f".part{i}"
            staged.write_text(text + "\n" + text.upper() + "\n")
            staged.rename(inbox / f"part{i}.txt")
            time.sleep(0.15)

    feeder = threading.Thread(target=feed)
    feeder.start()
    result = kubestream(
        "run",
        str(WORDCOUNT),
        "--executors",
        "2",
        "--batch-interval",
        "0.5",
        "--duration",
        "6",
        "--",
        "--dir",
        str(inbox),
        "--out",
        str(out / "counts"),
    )
    feeder.join()
    assert result.returncode == 0, result.stderr
    totals: Counter[str] = Counter()
    for part in out.glob("counts-*/part-*"):
        for line in part.read_text().splitlines():
            word, count = eval(line)  # lines are str((word, count)), as Spark writes them
            totals[word] += count
    expected = Counter(w for t in texts for w in (t + " " + t.upper()).split())
    assert totals == expected
    assert not list(out.glob(".*")), "a temporary batch directory was left behind"
    assert "Time:" in result.stdout


@pytest.mark.parametrize("sig", ["TERM", "INT"])
def test_signal_stops_gracefully_with_exit_zero(tmp_path: Path, sig: str) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubestream",
            "run",
            str(WORDCOUNT),
            "--batch-interval",
            "0.2",
            "--",
            "--dir",
            str(inbox),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    process.send_signal(getattr(__import__("signal"), f"SIG{sig}"))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopping gracefully" in stderr


def test_failing_batch_stops_the_job_when_the_policy_says_so(tmp_path: Path) -> None:
    app = tmp_path / "fails.py"
    app.write_text(
        "def build(ssc, args):\n    ssc.rate_stream(50).map(lambda x: 1 // (x - x)).pprint()\n"
    )
    result = kubestream(
        "run", str(app), "--batch-interval", "0.2", "--on-batch-failure", "stop", timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "ZeroDivisionError" in result.stderr
    assert re.search(r"\b1 of 1 batches failed", result.stderr), "the job ran on after the failure"
