"""kill -9 of the driver (several times, at random points) and of an executor while the Kafka
word count runs: counts files and the transactional Kafka sink hold every word exactly once."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

from tests.brokers import KafkaBroker
from tests.integration.kafka.test_kafka_stream import read_topic, texts
from tests.integration.kafka.topics import create_topic, produce
from tests.integration.run_job import kill_and_recover, start_checkpointed
from tests.integration.test_driver_recovery import batch_dirs, read_pairs

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "kafka_wordcount.py"


def test_driver_and_executor_killed_outputs_are_exactly_once(
    tmp_path: Path, kafka_broker: KafkaBroker
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    source, sink = create_topic(bootstrap, 4), create_topic(bootstrap, 2)
    out, checkpoint = tmp_path / "out", tmp_path / "checkpoint"
    lines = texts(3000, seed=3)
    rng = random.Random(12)
    fed = threading.Event()

    def feed() -> None:
        for start in range(0, len(lines), 100):
            chunk = lines[start : start + 100]
            produce(bootstrap, source, [(i % 4, None, t) for i, t in enumerate(chunk)])
            time.sleep(0.2)
        fed.set()

    def start(log: Path, *extra: str) -> subprocess.Popen[str]:
        with log.open("w") as stderr:
            return start_checkpointed(
                APP,
                checkpoint,
                ["--checkpoint-interval", "1.5", *extra],
                [
                    "--bootstrap-servers",
                    bootstrap,
                    "--topic",
                    source,
                    "--out",
                    str(out),
                    "--sink-topic",
                    sink,
                    "--transactional-id",
                    f"wordcount-{sink}",
                    "--max-rate-per-partition",
                    "400",
                ],
                stderr,
            )

    threading.Thread(target=feed, daemon=True).start()
    kill_and_recover(start, checkpoint, tmp_path, rng, fed, 8)

    expected = Counter(w for t in lines for w in t.split())
    counts = batch_dirs(out, "counts")
    union: Counter[str] = Counter()
    for directory in counts.values():
        union.update(read_pairs(directory))
    assert union == expected
    totals = batch_dirs(out, "totals")
    assert read_pairs(totals[max(totals)]) == expected
    written: Counter[str] = Counter()
    for _, value in read_topic(bootstrap, sink, 2):
        word, count = value.split()
        written[word] += int(count)
    assert written == expected
