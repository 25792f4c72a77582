"""kill -9 of the driver (at random points, three times) and of an executor while the
Cassandra word count runs: the tables equal a plain-Python count of the input."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from cassandra.cluster import Session

from tests.brokers import CassandraServer
from tests.integration.run_job import kill_and_recover, start_checkpointed

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "cassandra_wordcount.py"
INTERVAL_MS = 500


def test_driver_killed_mid_batch_tables_equal_an_uninterrupted_count(
    tmp_path: Path,
    cassandra_server: CassandraServer,
    cql: Session,
    keyspace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a StreamingJob's secretRefs would: the driver and its executors inherit these.
    monkeypatch.setenv("CASSANDRA_USERNAME", cassandra_server.username)
    monkeypatch.setenv("CASSANDRA_PASSWORD", cassandra_server.password)
    cql.execute(f"CREATE TABLE {keyspace}.word_totals (word text PRIMARY KEY, total bigint)")
    cql.execute(
        f"CREATE TABLE {keyspace}.word_counts (batch_time bigint, word text, count bigint,"
        " PRIMARY KEY (batch_time, word))"
    )
    inbox, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    inbox.mkdir()
    rng = random.Random(17)
    words = ["ant", "bee", "cat", "dog", "eel", "fox"]
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(60)]
    fed = threading.Event()

    def feed() -> None:
        # Files present before a job's first start are not its input: wait for it.
        deadline = time.monotonic() + 60
        while not list(checkpoint.glob("metadata-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        for i, text in enumerate(texts):
            staged = inbox / f".f{i}"
            staged.write_text(text + "\n")
            staged.rename(inbox / f"f{i:03d}.txt")
            time.sleep(0.2)
        fed.set()

    def start(log: Path, *extra: str) -> subprocess.Popen[str]:
        with log.open("w") as stderr:
            return start_checkpointed(
                APP,
                checkpoint,
                ["--checkpoint-interval", "1.5", *extra],
                [
                    "--dir",
                    str(inbox),
                    "--contact-point",
                    f"{cassandra_server.host}:{cassandra_server.port}",
                    "--keyspace",
                    keyspace,
                ],
                stderr,
            )

    threading.Thread(target=feed, daemon=True).start()
    stderr = kill_and_recover(start, checkpoint, tmp_path, rng, fed, 6)
    assert cassandra_server.password not in stderr

    expected = Counter(w for t in texts for w in t.split())
    totals = cql.execute(f"SELECT word, total FROM {keyspace}.word_totals")
    assert {r.word: r.total for r in totals} == expected
    rows = list(
        cql.execute(
            f"SELECT batch_time, word, count, writetime(count) AS t FROM {keyspace}.word_counts"
        )
    )
    # Each batch's counts once: a replayed batch rewrote its own rows, nothing was added.
    per_batch: Counter[str] = Counter()
    for r in rows:
        per_batch[r.word] += r.count
    assert per_batch == expected
    assert all(r.batch_time % INTERVAL_MS == 0 and r.t == r.batch_time * 1000 for r in rows)
