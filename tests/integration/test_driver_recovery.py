"""kill -9 the driver at random points; restarted on its checkpoint, output is exactly once."""

from __future__ import annotations

import ast
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from tests.integration.run_job import start_checkpointed, wait_until_processing

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "stateful_wordcount.py"
INTERVAL_MS = 500


def start(
    checkpoint: Path, inbox: Path, out: Path, log: Path, *extra: str
) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return start_checkpointed(
            APP,
            checkpoint,
            ["--checkpoint-interval", "1.5", *extra],
            ["--dir", str(inbox), "--out", str(out)],
            stderr,
        )


def read_pairs(directory: Path) -> Counter[str]:
    pairs: Counter[str] = Counter()
    for part in directory.glob("part-*"):
        for line in part.read_text().splitlines():
            word, count = ast.literal_eval(line)
            pairs[word] += count
    return pairs


def batch_dirs(out: Path, name: str) -> dict[int, Path]:
    return {int(p.name.split("-")[1]): p for p in out.glob(f"{name}-*") if p.is_dir()}


def test_driver_killed_three_times_output_is_exactly_once(tmp_path: Path) -> None:
    inbox, out, checkpoint = tmp_path / "in", tmp_path / "out", tmp_path / "checkpoint"
    inbox.mkdir()
    rng = random.Random(11)
    texts = [" ".join(rng.choices(["ant", "bee", "cat", "dog", "eel"], k=8)) for _ in range(40)]
    fed = threading.Event()

    def feed() -> None:
        # Files present before a job's first start are not its input (new files only), so
        # feed once the first driver has started and recorded that in its checkpoint.
        deadline = time.monotonic() + 60
        while not list(checkpoint.glob("metadata-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        for i, text in enumerate(texts):
            staged = inbox / f".f{i}"
            staged.write_text(text + "\n")
            staged.rename(inbox / f"f{i:03d}.txt")
            time.sleep(0.25)
        fed.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    for attempt in range(3):
        log = tmp_path / f"driver-{attempt}.log"
        driver = start(checkpoint, inbox, out, log)
        wait_until_processing(checkpoint, log, first=attempt == 0)
        time.sleep(rng.uniform(0.5, 2.5))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert fed.wait(60)
    log = tmp_path / "driver-final.log"
    final = start(checkpoint, inbox, out, log, "--duration", "5")
    final.wait(timeout=120)
    stderr = log.read_text()
    assert final.returncode == 0, stderr
    assert "recovered from checkpoint" in stderr

    expected = Counter(w for t in texts for w in t.split())
    counts = batch_dirs(out, "counts")
    times = sorted(counts)
    assert times == list(range(times[0], times[-1] + INTERVAL_MS, INTERVAL_MS)), (
        "a batch is missing"
    )
    union: Counter[str] = Counter()
    for directory in counts.values():
        union.update(read_pairs(directory))
    assert union == expected
    totals = batch_dirs(out, "totals")
    assert read_pairs(totals[max(totals)]) == expected
