"""The kubestream command as a user runs it: real processes, clear one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from kubestream.transport import generate_keypair

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


def test_a_mistake_in_the_stream_graph_is_one_line_naming_the_value(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("def build(ssc, args):\n    ssc.rate_stream(10).window(1.5).pprint()\n")
    result = kubestream("run", str(app), "--batch-interval", "1", "--duration", "5")
    assert_one_line_error(result, "window must be a multiple", "got 1.5")


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


class RunningJob:
    """A `kubestream run` process whose output is read as it comes, so tests wait on it."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kubestream", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.first_batch = threading.Event()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout),
            threading.Thread(target=self._read_stderr),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.stdout.append(line)
            if line.startswith("Time:"):
                self.first_batch.set()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr.extend(self.process.stderr)

    def wait_for_first_batch(self) -> None:
        """The first printed batch proves the file stream has taken its start listing."""
        if not self.first_batch.wait(60):
            self.stop(signal.SIGKILL)
            pytest.fail("no batch printed within 60 s; stderr:\n" + "".join(self.stderr))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        for reader in self._readers:
            reader.join()
        for pipe in (self.process.stdout, self.process.stderr):
            assert pipe is not None
            pipe.close()
        return code


def read_counts(out: Path) -> Counter[str]:
    totals: Counter[str] = Counter()
    for part in out.glob("counts-*/part-*"):
        for line in part.read_text().splitlines():
            word, count = eval(line)  # lines are str((word, count)), as Spark writes them
            totals[word] += count
    return totals


def test_wordcount_in_local_mode_matches_reference(tmp_path: Path) -> None:
    inbox, out = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    texts = [f"the quick brown fox {i} jumps over the lazy dog {i % 3}" for i in range(12)]
    expected = Counter(w for t in texts for w in (t + " " + t.upper()).split())
    job = RunningJob(
        str(WORDCOUNT),
        "--executors",
        "2",
        "--batch-interval",
        "0.5",
        "--",
        "--dir",
        str(inbox),
        "--out",
        str(out / "counts"),
    )
    job.wait_for_first_batch()
    for i, text in enumerate(texts):
        staged = inbox / f".part{i}"
        staged.write_text(text + "\n" + text.upper() + "\n")
        staged.rename(inbox / f"part{i}.txt")
        time.sleep(0.15)
    deadline = time.monotonic() + 60
    while read_counts(out) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.stop() == 0, "".join(job.stderr)
    assert read_counts(out) == expected
    assert not list(out.glob(".*")), "a temporary batch directory was left behind"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_gracefully_with_exit_zero(tmp_path: Path, sig: int) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    job = RunningJob(str(WORDCOUNT), "--batch-interval", "0.2", "--", "--dir", str(inbox))
    job.wait_for_first_batch()
    assert job.stop(sig) == 0, "".join(job.stderr)
    assert "stopping gracefully" in "".join(job.stderr)


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
    assert re.search(r"\b1 of 1 batches that ran failed", result.stderr), (
        "the job ran on after the failure"
    )


def test_a_failing_transform_under_report_keeps_the_job_running_and_exits_1(
    tmp_path: Path,
) -> None:
    """The default policy, Spark's: the batch whose transform raises (on the driver) fails
    visibly, later batches run, and the run's exit status reports the failure."""
    app = tmp_path / "fails_once.py"
    app.write_text(
        "def build(ssc, args):\n"
        "    seen = []\n"
        "    def once(rdd):\n"
        "        seen.append(1)\n"
        "        if len(seen) == 2:\n"
        "            raise ValueError('transform failed once')\n"
        "        return rdd\n"
        "    ssc.rate_stream(20).transform(once).count().pprint()\n"
    )
    result = kubestream("run", str(app), "--batch-interval", "0.2", "--duration", "3", timeout=120)
    assert result.returncode == 1, result.stderr
    assert "transform failed once" in result.stderr
    assert "later batches keep running" in result.stderr
    failed = re.search(r"\b1 of (\d+) batches that ran failed", result.stderr)
    assert failed and int(failed.group(1)) > 2, result.stderr


def test_executor_exits_zero_on_sigterm() -> None:
    """In a pod the executor is PID 1, where SIGTERM does nothing without a handler."""
    public, secret = generate_keypair()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics_port = probe.getsockname()[1]
    executor = subprocess.Popen(
        [sys.executable, "-m", "kubestream", "executor", "--driver-port", "1"],
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "PYTHONHASHSEED": "0",
            "KUBESTREAM_CURVE_PUBLIC_KEY": public,
            "KUBESTREAM_CURVE_SECRET_KEY": secret,
            "KUBESTREAM_BLOCK_PORT": "0",
            "KUBESTREAM_METRICS_PORT": str(metrics_port),
        },
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    deadline = time.monotonic() + 30
    while executor.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.5)  # /metrics answers a moment before the handler is installed
    executor.send_signal(signal.SIGTERM)
    _, stderr = executor.communicate(timeout=10)
    assert executor.returncode == 0, stderr


def config_map_volume(directory: Path, data: dict[str, str]) -> Path:
    """A directory laid out as the kubelet mounts a ConfigMap: the files live in a
    timestamped directory reached through ``..data``, each key a symlink into it."""
    stamped = directory / "..2026_11_30_15_00_00.1"
    stamped.mkdir(parents=True)
    for key, value in data.items():
        (stamped / key).write_text(value)
    (directory / "..data").symlink_to(stamped.name)
    for key in data:
        (directory / key).symlink_to(f"..data/{key}")
    return directory


def test_application_reads_its_configuration_from_the_config_directory(tmp_path: Path) -> None:
    """spec.configuration end to end: the operator mounts it as a ConfigMap at
    KUBESTREAM_CONFIG; the application reads it as ssc.conf and ships a value to executors."""
    app = tmp_path / "greets.py"
    app.write_text(
        "def build(ssc, args):\n"
        "    greeting = ssc.conf['greeting']\n"
        "    assert sorted(ssc.conf) == ['greeting', 'multi.line'], dict(ssc.conf)\n"
        "    assert ssc.conf['multi.line'] == 'one\\ntwo\\n'\n"
        "    ssc.queue_stream([['ada', 'bob']]).map(lambda name: greeting + name).pprint()\n"
    )
    conf = config_map_volume(tmp_path / "config", {"greeting": "hi ", "multi.line": "one\ntwo\n"})
    result = kubestream(
        "run",
        str(app),
        "--batch-interval",
        "0.2",
        "--duration",
        "3",
        "--config",
        str(conf),
        env={"KUBESTREAM_EXECUTORS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "hi ada\nhi bob\n" in result.stdout


def test_missing_config_directory_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = kubestream(
        "run", str(WORDCOUNT), "--duration", "1", env={"KUBESTREAM_CONFIG": str(tmp_path / "no")}
    )
    assert_one_line_error(result, "KUBESTREAM_CONFIG", str(tmp_path / "no"))
