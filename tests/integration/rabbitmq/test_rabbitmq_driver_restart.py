"""A driver killed -9 while its executors run on, as executor pods outlive a driver pod on
Kubernetes: real `kubestream driver` and `kubestream executor` processes, the real node,
messages published all along. The executors re-register with each new driver on the same
address; a receiver acknowledges a block only once the driver answered that it recorded
it. Messages are still published while the last driver stops gracefully: each is then
processed (once with ids, at least once without) or still in the queue, none acknowledged
and dropped (as a receiver left running by an earlier driver would)."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.brokers import RabbitMQBroker
from tests.integration.rabbitmq.queues import depth, drain, new_queue, publish
from tests.integration.run_job import SeparateJob

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "rabbitmq_messages.py"


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
    tmp_path: Path, rabbitmq_broker: RabbitMQBroker, jobs: list[SeparateJob], ids: bool
) -> None:
    queue = new_queue(rabbitmq_broker)
    bodies = [f"d{i:05d}" for i in range(3000)]
    tail = [f"t{i:05d}" for i in range(600)]  # published while the last driver stops
    job = SeparateJob(
        tmp_path,
        APP,
        f"--port {rabbitmq_broker.port} --queue {queue} --out {tmp_path / 'out'} --receivers 2"
        + ("" if ids else " --id-header none"),
        {
            "RABBITMQ_USERNAME": rabbitmq_broker.username,
            "RABBITMQ_PASSWORD": rabbitmq_broker.password,
        },
    )
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
