"""The Flume source against a real agent (sequence source, memory channel, Thrift sink)
and real executor processes: kill -9 of the executor hosting the receiver mid-stream,
and every event still arrives."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from tests.brokers import free_port, start_flume
from tests.integration.run_job import children, start_checkpointed, wait_until_processing

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "flume_events.py"
EVENTS = 20000


def saved(out: Path) -> list[str]:
    return [line for part in out.glob("events-*/part-*") for line in part.read_text().splitlines()]


def receiver_host(driver_pid: int, port: int) -> int:
    """The executor process listening on the receiver's port (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            # local address is HEX_IP:HEX_PORT; state 0A is LISTEN; field 9 is the inode.
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(f"socket:[{fields[9]}]")
    for pid in children(driver_pid):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return pid
    raise AssertionError(f"no executor of {driver_pid} listens on {port}")


def test_every_event_arrives_when_the_receivers_executor_is_killed(tmp_path: Path) -> None:
    port, out, checkpoint = free_port(), tmp_path / "out", tmp_path / "checkpoint"
    log = tmp_path / "driver.log"
    with log.open("w") as stderr:
        driver = start_checkpointed(
            APP,
            checkpoint,
            ["--write-ahead-log", "--duration", "40"],
            ["--port", str(port), "--out", str(out)],
            stderr,
        )
    agent = None
    try:
        wait_until_processing(checkpoint, log, first=True)
        agent = start_flume(tmp_path / "flume", f"127.0.0.1:{port}", EVENTS)
        deadline = time.monotonic() + 60
        while not saved(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = receiver_host(driver.pid, port)
        subprocess.run(["kill", "-9", str(victim)], check=True)
        killed_after = len(saved(out))
        deadline = time.monotonic() + 120
        while len(set(saved(out))) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if agent is not None:
            agent.stop()
        driver.kill()
        driver.wait()
    events = saved(out)
    assert killed_after < EVENTS, "the receiver's executor was killed after the stream ended"
    assert set(events) == {str(i) for i in range(EVENTS)}, log.read_text()[-3000:]
