"""A driver killed -9 while its executors run on, with a real Flume agent delivering: the
receiver answers a batch OK only once the driver recorded its block, so a batch the dead
driver never answered is rolled back by the agent and sent again, and every event of the
sequence arrives (at-least-once: Flume events carry no id)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.brokers import Broker, free_port, start_flume
from tests.integration.run_job import SeparateJob

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "flume_events.py"
EVENTS = 20000


def saved(out: Path) -> set[str]:
    return {line for part in out.glob("events-*/part-*") for line in part.read_text().splitlines()}


@pytest.mark.timeout(600)
def test_every_event_arrives_across_driver_kills_while_the_executors_run_on(
    tmp_path: Path, jobs: list[SeparateJob]
) -> None:
    port, out = free_port(), tmp_path / "out"
    job = SeparateJob(tmp_path, APP, f"--port {port} --out {out}", {})
    jobs.append(job)
    driver = job.driver("driver-0")
    executors = [job.executor(name) for name in ("exec-a", "exec-b")]
    job.wait_processing("driver-0", first=True)
    job.wait_registered(["exec-a", "exec-b"])
    agent: Broker | None = None
    try:
        agent = start_flume(tmp_path / "flume", f"127.0.0.1:{port}", EVENTS)
        deadline = time.monotonic() + 60
        while not saved(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Down for less than a block waits for its answer, then for longer.
        for attempt, downtime in enumerate([2.0, 12.0], start=1):
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            if attempt == 1:
                killed_with = len(saved(out))
            time.sleep(downtime)
            assert all(e.poll() is None for e in executors), "an executor exited with its driver"
            driver = job.driver(f"driver-{attempt}")
            job.wait_processing(f"driver-{attempt}", first=False)
            time.sleep(1.0)
        deadline = time.monotonic() + 180
        while len(saved(out)) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if agent is not None:
            agent.stop()
    assert killed_with < EVENTS, "the driver was first killed after the stream ended"
    assert saved(out) == {str(i) for i in range(EVENTS)}, (tmp_path / "driver-2.log").read_text()[
        -3000:
    ]
