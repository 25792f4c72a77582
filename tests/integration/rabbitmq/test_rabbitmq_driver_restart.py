"""A driver killed -9 while its executors run on, as executor pods outlive a driver pod on
Kubernetes: real `kubestream driver` and `kubestream executor` processes, the real node,
messages published all along. The executors re-register with each new driver on the same
address; a receiver acknowledges a block only once the driver answered that it recorded
it. Messages are still published while the last driver stops gracefully: each is then
processed (once with ids, at least once without) or still in the queue, none acknowledged
and dropped (as a receiver left running by an earlier driver would)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream.transport import generate_keypair
from tests.brokers import RabbitMQBroker, free_port
from tests.integration.rabbitmq.queues import depth, drain, new_queue, publish

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "rabbitmq_messages.py"


class Job:
    """One job's processes: drivers started one after another on one address and
    checkpoint, and executors that only ever connect to that address."""

    def __init__(self, tmp_path: Path, broker: RabbitMQBroker, queue: str, ids: bool) -> None:
        public, secret = generate_keypair()
        self.env = dict(
            os.environ,
            KUBESTREAM_CURVE_PUBLIC_KEY=public,
            KUBESTREAM_CURVE_SECRET_KEY=secret,
            RABBITMQ_USERNAME=broker.username,
            RABBITMQ_PASSWORD=broker.password,
        )
        self.tmp = tmp_path
        self.port = free_port()
        self.app_args = (
            f"--port {broker.port} --queue {queue} --out {tmp_path / 'out'} --receivers 2"
            + ("" if ids else " --id-header none")
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, log: Path, *args: str) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubestream", *args], env=self.env, stdout=out, stderr=out
            )
        self.procs.append(proc)
        return proc

    def driver(self, name: str, *extra: str) -> subprocess.Popen[bytes]:
        return self._spawn(
            self.tmp / f"{name}.log",
            "driver",
            "--app",
            str(APP),
            "--app-args",
            self.app_args,
            "--host",
            "127.0.0.1",
            "--driver-port",
            str(self.port),
            "--ui-port",
            "0",
            "--batch-interval",
            "0.5",
            "--checkpoint",
            str(self.tmp / "checkpoint"),
            "--checkpoint-interval",
            "1.5",
            "--write-ahead-log",
            "--log-level",
            "WARNING",
            *extra,
        )

    def executor(self, executor_id: str) -> subprocess.Popen[bytes]:
        return self._spawn(
            self.tmp / f"executor-{executor_id}.log",
            "executor",
            "--executor-id",
            executor_id,
            "--driver-host",
            "127.0.0.1",
            "--driver-port",
            str(self.port),
            "--advertise-host",
            "127.0.0.1",
            "--block-host",
            "127.0.0.1",
            "--block-port",
            "0",
            "--metrics-port",
            "0",
        )

    def wait_registered(self, executor_ids: list[str]) -> None:
        """Until each executor logged that it registered with a driver."""

        def registered(executor_id: str) -> bool:
            log = self.tmp / f"executor-{executor_id}.log"
            return "registered with the driver" in log.read_text()

        deadline = time.monotonic() + 60
        while not all(map(registered, executor_ids)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(map(registered, executor_ids)), "the executors never registered"

    def wait_processing(self, name: str, first: bool) -> None:
        """Until the driver runs batches: it wrote a checkpoint, or recovered from one."""
        log = self.tmp / f"{name}.log"

        def running() -> bool:
            if first:
                return bool(list((self.tmp / "checkpoint").glob("metadata-*")))
            return "recovered from checkpoint" in log.read_text()

        deadline = time.monotonic() + 60
        while not running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(), f"the driver never ran: {log.read_text()[-2000:]}"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def jobs() -> Iterator[list[Job]]:
    started: list[Job] = []
    yield started
    for job in started:
        job.stop()


def saved(out: Path) -> Counter[str]:
    """Every line of every batch's output; a replayed batch rewrites its own directory."""
    lines: Counter[str] = Counter()
    for part in out.glob("messages-*/part-*"):
        lines.update(part.read_text().splitlines())
    return lines


# Starting the node (when this is the package's first test) and four driver runs.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("ids", [True, False], ids=["message ids", "no ids"])
def test_a_driver_killed_while_its_executors_run_on_loses_no_message(
    tmp_path: Path, rabbitmq_broker: RabbitMQBroker, jobs: list[Job], ids: bool
) -> None:
    queue = new_queue(rabbitmq_broker)
    bodies = [f"d{i:05d}" for i in range(3000)]
    tail = [f"t{i:05d}" for i in range(600)]  # published while the last driver stops
    job = Job(tmp_path, rabbitmq_broker, queue, ids)
    jobs.append(job)
    rng = random.Random(31)
    fed = threading.Event()

    def feed(messages: list[str], done: threading.Event) -> None:
        for start in range(0, len(messages), 100):
            publish(rabbitmq_broker, queue, messages[start : start + 100], ids=ids)
            time.sleep(0.15)
        done.set()

    driver = job.driver("driver-0")
    executors = [job.executor(name) for name in ("exec-a", "exec-b")]
    job.wait_processing("driver-0", first=True)
    job.wait_registered(["exec-a", "exec-b"])
    threading.Thread(target=feed, args=(bodies, fed), daemon=True).start()
    # Down for less than a block waits for its answer (its report goes to the next driver),
    # and for longer (the block is abandoned: the broker delivers its messages again).
    for attempt, downtime in enumerate([1.0, 12.0, 3.0], start=1):
        time.sleep(rng.uniform(1.0, 2.5))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        time.sleep(downtime)
        assert all(e.poll() is None for e in executors), "an executor exited with its driver"
        driver = job.driver(f"driver-{attempt}")
        job.wait_processing(f"driver-{attempt}", first=False)
    assert fed.wait(120)
    deadline = time.monotonic() + 120
    while set(saved(tmp_path / "out")) < set(bodies) and time.monotonic() < deadline:
        time.sleep(0.5)
    tail_fed = threading.Event()
    threading.Thread(target=feed, args=(tail, tail_fed), daemon=True).start()
    time.sleep(0.5)
    driver.send_signal(signal.SIGTERM)  # graceful: receivers stop, every record is processed
    assert driver.wait(timeout=120) == 0, (tmp_path / "driver-3.log").read_text()[-3000:]
    for executor in executors:
        executor.wait(timeout=60)
    assert tail_fed.wait(60)

    lines = saved(tmp_path / "out")
    assert set(lines) >= set(bodies), f"missing {sorted(set(bodies) - set(lines))[:10]}"
    assert depth(rabbitmq_broker, queue)[1] == 0  # nothing left unacknowledged
    left = drain(rabbitmq_broker, queue)
    lost = set(tail) - set(lines) - set(left)
    assert not lost, f"acknowledged, never processed: {sorted(lost)[:10]} of {len(lost)}"
    if ids:
        doubled = {body: n for body, n in lines.items() if n > 1}
        assert not doubled, f"processed more than once: {list(doubled.items())[:10]}"
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert rabbitmq_broker.password not in logs
