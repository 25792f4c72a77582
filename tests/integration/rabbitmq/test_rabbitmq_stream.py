"""The RabbitMQ source against a real node, with real driver and executor processes:
every published message processed once across kill -9 of an executor, of the driver
(write-ahead log on), dropped connections and messages published twice, and the queue
empty at the end."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.brokers import RabbitMQBroker
from tests.integration.rabbitmq.queues import depth, new_queue, publish
from tests.integration.run_job import children, start_checkpointed, wait_until_processing

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "rabbitmq_messages.py"


def saved(out: Path) -> Counter[str]:
    """Every line of every batch's output; a replayed batch rewrites its own directory."""
    lines: Counter[str] = Counter()
    for part in out.glob("messages-*/part-*"):
        lines.update(part.read_text().splitlines())
    return lines


def wait_gone(pids: list[int]) -> None:
    """Until the killed driver's executors have exited (they do once their parent is gone),
    so the next driver does not start beside receivers still acknowledging for the old one."""

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + 30
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)


def use_credentials(
    monkeypatch: pytest.MonkeyPatch, broker: RabbitMQBroker, tmp_path: Path, password: str
) -> None:
    """The job's password as a mounted Secret would give it: a file named by a variable."""
    secret = tmp_path / "password"
    secret.write_text(password)
    monkeypatch.setenv("RABBITMQ_USERNAME", broker.username)
    monkeypatch.setenv("RABBITMQ_PASSWORD_FILE", str(secret))


def start_job(
    port: int, tmp_path: Path, queue: str, log: Path, *extra: str, receivers: int = 2
) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return start_checkpointed(
            APP,
            tmp_path / "checkpoint",
            ["--write-ahead-log", "--checkpoint-interval", "1.5", *extra],
            [
                "--port",
                str(port),
                "--queue",
                queue,
                "--out",
                str(tmp_path / "out"),
                "--receivers",
                str(receivers),
            ],
            stderr,
        )


# Installing and starting the node (the first test of the package) and five driver runs.
@pytest.mark.timeout(600)
def test_every_message_once_across_executor_driver_and_connection_loss(
    tmp_path: Path, rabbitmq_broker: RabbitMQBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_credentials(monkeypatch, rabbitmq_broker, tmp_path, rabbitmq_broker.password)
    queue = new_queue(rabbitmq_broker)
    bodies = [f"m{i:05d}" for i in range(3000)]
    rng, rng_feed = random.Random(13), random.Random(14)
    fed = threading.Event()

    def feed() -> None:
        # Some messages are published twice with the same id, as a publisher does that
        # retries after a lost confirm: the copies must be dropped like redeliveries.
        for start in range(0, len(bodies), 150):
            chunk = bodies[start : start + 150]
            publish(rabbitmq_broker, queue, chunk + rng_feed.sample(bodies[: start + 150], 15))
            time.sleep(0.1)
        fed.set()

    threading.Thread(target=feed, daemon=True).start()
    checkpoint = tmp_path / "checkpoint"
    for attempt in range(3):
        log = tmp_path / f"driver-{attempt}.log"
        driver = start_job(rabbitmq_broker.port, tmp_path, queue, log)
        wait_until_processing(checkpoint, log, first=attempt == 0)
        time.sleep(rng.uniform(0.5, 1.5))
        if attempt == 0:
            executors = children(driver.pid)
            assert executors, "the driver has no executor processes"
            subprocess.run(["kill", "-9", str(executors[0])], check=True)
        if attempt == 1:
            # The broker drops every client connection, three times: receivers reconnect
            # with backoff, and a drop between a block's store and its ack redelivers it.
            for _ in range(3):
                rabbitmq_broker.ctl("close_all_connections", "kubestream test: connection drop")
                time.sleep(rng.uniform(0.3, 0.8))
        time.sleep(rng.uniform(1.0, 2.5))
        orphans = children(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        wait_gone(orphans)
    assert fed.wait(120)
    log = tmp_path / "driver-final.log"
    final = start_job(rabbitmq_broker.port, tmp_path, queue, log, "--duration", "10")
    final.wait(timeout=180)
    stderr = log.read_text()
    assert final.returncode == 0, stderr[-3000:]
    assert "recovered from checkpoint" in stderr
    assert rabbitmq_broker.password not in stderr

    lines = saved(tmp_path / "out")
    assert set(lines) == set(bodies), f"missing {sorted(set(bodies) - set(lines))[:10]}"
    doubled = {body: n for body, n in lines.items() if n > 1}
    assert not doubled, f"delivered more than once: {list(doubled.items())[:10]}"
    assert depth(rabbitmq_broker, queue) == (0, 0)


def test_tls_with_the_password_from_a_variable_and_a_wrong_one_never_logged(
    tmp_path: Path, rabbitmq_broker: RabbitMQBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = new_queue(rabbitmq_broker)
    bodies = [f"t{i:04d}" for i in range(500)]
    publish(rabbitmq_broker, queue, bodies)
    monkeypatch.setenv("RABBITMQ_CA_FILE", str(rabbitmq_broker.ca_location))
    wrong = f"wrong-{rabbitmq_broker.password}"
    (tmp_path / "wrong").mkdir()
    use_credentials(monkeypatch, rabbitmq_broker, tmp_path / "wrong", wrong)
    log = tmp_path / "wrong.log"
    refused = start_job(
        rabbitmq_broker.tls_port, tmp_path / "wrong", queue, log, "--duration", "4", receivers=1
    )
    assert refused.wait(timeout=120) == 0
    stderr = log.read_text()
    assert "reconnecting" in stderr and wrong not in stderr
    assert depth(rabbitmq_broker, queue) == (len(bodies), 0)

    # The password as the StreamingJob's secretRefs give it: a variable on every pod.
    monkeypatch.delenv("RABBITMQ_PASSWORD_FILE")
    monkeypatch.setenv("RABBITMQ_PASSWORD", rabbitmq_broker.password)
    log = tmp_path / "tls.log"
    job = start_job(rabbitmq_broker.tls_port, tmp_path, queue, log, "--duration", "6", receivers=1)
    assert job.wait(timeout=120) == 0, log.read_text()[-3000:]
    assert rabbitmq_broker.password not in log.read_text()
    assert saved(tmp_path / "out") == Counter(bodies)
    assert depth(rabbitmq_broker, queue) == (0, 0)
