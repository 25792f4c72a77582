"""Cutting a graceful stop short (a second SIGTERM, or its timeout) still leaves a usable
checkpoint: the job restarted on it ends with exact running totals."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.run_job import start_checkpointed
from tests.integration.test_driver_recovery import read_pairs

SLOW_APP = """
import time

def add(counts, total):
    return sum(counts) + (total or 0)

def slow(word):
    time.sleep(0.4)
    return (word, 1)

def build(ssc, args):
    inbox, out = args
    words = ssc.text_file_stream(inbox).flat_map(str.split).map(slow)
    words.update_state_by_key(add).save_as_text_files(out + "/totals")
"""
TEXTS = [f"w{i % 5} w{i % 3} x" for i in range(12)]


def start(
    app: Path, checkpoint: Path, inbox: Path, out: Path, *extra: str
) -> subprocess.Popen[str]:
    flags = ["--checkpoint-interval", "1", *extra]
    return start_checkpointed(app, checkpoint, flags, [str(inbox), str(out)], subprocess.PIPE)


def latest_totals(out: Path) -> Counter[str]:
    batches = sorted(out.glob("totals-*"))
    return read_pairs(batches[-1]) if batches else Counter()


def wait_for(predicate: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.parametrize("cut_short_by", ["second SIGTERM", "graceful timeout"])
def test_a_stop_cut_short_leaves_a_usable_checkpoint(tmp_path: Path, cut_short_by: str) -> None:
    app, inbox, out, checkpoint = (tmp_path / n for n in ("slow.py", "in", "out", "ckpt"))
    app.write_text(SLOW_APP)
    inbox.mkdir()
    timeout = "60" if cut_short_by == "second SIGTERM" else "0.5"
    first = start(app, checkpoint, inbox, out, "--graceful-timeout", timeout)
    wait_for(lambda: checkpoint.exists() and any(checkpoint.iterdir()), "the first checkpoint")
    for i, text in enumerate(TEXTS):
        staged = inbox / f".f{i}"
        staged.write_text(text + "\n")
        staged.rename(inbox / f"f{i:02d}")
        time.sleep(0.1)
    wait_for(lambda: any(out.glob("totals-*")), "the first batch's totals")
    first.send_signal(signal.SIGTERM)
    if cut_short_by == "second SIGTERM":
        time.sleep(0.3)
        first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    expected_message = "stopping at once" if cut_short_by == "second SIGTERM" else "timed out"
    assert expected_message in stderr
    assert "Traceback" not in stderr, "a stop must read clean"
    expected = Counter(w for t in TEXTS for w in t.split())
    assert latest_totals(out) != expected, "the stop was not cut short: nothing left to recover"

    second = start(app, checkpoint, inbox, out)
    try:
        wait_for(lambda: latest_totals(out) == expected, "exact totals after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr


def test_a_stop_during_start_up_ends_the_job_cleanly(tmp_path: Path) -> None:
    """SIGTERM while executors are still starting (a pod deleted as it starts) stops the job
    once it has started, with exit status 0, instead of killing the driver outright."""
    app, inbox, out, checkpoint = (tmp_path / n for n in ("slow.py", "in", "out", "ckpt"))
    app.write_text(SLOW_APP)
    inbox.mkdir()
    log = tmp_path / "driver.log"
    with log.open("w") as stderr:
        driver = start_checkpointed(app, checkpoint, [], [str(inbox), str(out)], stderr)
        wait_for(lambda: "Streaming UI at" in log.read_text(), "the UI, before the executors")
        driver.send_signal(signal.SIGTERM)
        driver.wait(timeout=90)
    text = log.read_text()
    assert driver.returncode == 0, text
    assert "stopping gracefully" in text
    assert "Traceback" not in text and "driver process is gone" not in text, text
