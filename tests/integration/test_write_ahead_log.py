"""With the write-ahead log, killing the driver loses no message a reliable receiver took."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.integration.run_job import start_checkpointed, wait_until_processing

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "spool_receiver.py"


def start(
    checkpoint: Path, spool: Path, out: Path, log: Path, *extra: str
) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return start_checkpointed(
            APP,
            checkpoint,
            ["--write-ahead-log", *extra],
            ["--spool", str(spool), "--out", str(out)],
            stderr,
        )


def test_driver_kills_lose_no_received_message(tmp_path: Path) -> None:
    spool, out, checkpoint = tmp_path / "spool", tmp_path / "out", tmp_path / "checkpoint"
    spool.mkdir()
    messages: list[str] = []
    kills_done, fed = threading.Event(), threading.Event()

    def feed() -> None:
        """20 messages every 0.1 s until the last kill, however long restarts take."""
        start_index = 0
        while not kills_done.is_set() and start_index < 50_000:
            batch = [f"message-{i:05d}" for i in range(start_index, start_index + 20)]
            staged = spool / f".m{start_index}"
            staged.write_text("\n".join(batch) + "\n")
            staged.rename(spool / f"m{start_index:05d}")
            messages.extend(batch)
            start_index += 20
            time.sleep(0.1)
        fed.set()

    feeder = threading.Thread(target=feed, daemon=True)
    drivers: list[subprocess.Popen[str]] = []
    try:
        for attempt in range(3):
            log = tmp_path / f"driver-{attempt}.log"
            driver = start(checkpoint, spool, out, log)
            drivers.append(driver)
            wait_until_processing(checkpoint, log, first=attempt == 0)
            if attempt == 0:
                feeder.start()
            time.sleep(1.5)
            driver.send_signal(signal.SIGKILL)
            driver.wait()
        kills_done.set()
        assert fed.wait(60)
        log = tmp_path / "driver-final.log"
        final = start(checkpoint, spool, out, log, "--duration", "5")
        drivers.append(final)
        final.wait(timeout=120)
        assert final.returncode == 0, log.read_text()
        assert not list(spool.iterdir()), "the spool was not drained"
        seen: set[str] = set()
        for part in out.glob("messages-*/part-*"):
            seen.update(part.read_text().splitlines())
        assert seen == set(messages), f"lost {len(set(messages) - seen)} messages"
    finally:
        kills_done.set()
        for process in drivers:
            if process.poll() is None:
                process.kill()
                process.wait()
