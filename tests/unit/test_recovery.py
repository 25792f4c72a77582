"""Stop a checkpointed job, start it again on the same directory: it resumes exactly."""

from __future__ import annotations

import logging
import operator
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubestream import State, StateSpec, StreamingContext
from kubestream.clock import ManualClock
from kubestream.errors import ConfigError
from kubestream.storage.checkpoint_store import CheckpointStore, write_atomically

TEXTS = [f"a b c {i % 3} {'d' * (i % 2)}" for i in range(14)]


class Job:
    """A checkpointed job over a directory, driven batch by batch on a manual clock."""

    def __init__(self, tmp: Path, define: Callable[[Any], Any]) -> None:
        self.inbox = tmp / "in"
        self.inbox.mkdir(exist_ok=True)
        self.checkpoint = str(tmp / "checkpoint")
        self.define = define
        self.outputs: dict[int, list[Any]] = {}
        self.dropped = 0

    def drop(self) -> None:
        staged = self.inbox / f".f{self.dropped}"
        staged.write_text(TEXTS[self.dropped] + "\n")
        staged.rename(self.inbox / f"f{self.dropped:03d}")
        self.dropped += 1

    def run(self, clock: ManualClock, batches: int) -> StreamingContext:
        ssc = StreamingContext(1.0, checkpoint=self.checkpoint, clock=clock, checkpoint_interval=3)
        words = ssc.text_file_stream(str(self.inbox)).flat_map(str.split).map(lambda w: (w, 1))
        self.define(words).foreach_rdd(
            lambda t, rdd: self.outputs.__setitem__(t, sorted(rdd.collect()))
        )
        ssc.start()
        for _ in range(batches):
            self.drop()
            clock.advance(1.0)
            ssc.wait_for_batch(round(clock.now() * 1000), 30)
        ssc.stop()
        return ssc


def totals(words: Any) -> Any:
    return words.update_state_by_key(lambda vs, old: sum(vs) + (old or 0))


def windowed(words: Any) -> Any:
    return words.reduce_by_key_and_window(
        operator.add, operator.sub, 3, 1, filter_fn=lambda kv: kv[1] != 0
    )


def window_reference(batch: int) -> list[tuple[str, int]]:
    """Counts of the files dropped in batches batch-2..batch (1-based), one file per batch."""
    counts = Counter(w for t in TEXTS[max(0, batch - 3) : batch] for w in t.split())
    return sorted(counts.items())


def test_running_totals_resume_exactly_after_a_stop(tmp_path: Path) -> None:
    job = Job(tmp_path, totals)
    clock = ManualClock(1000.0)
    job.run(clock, 7)
    restarted = ManualClock(clock.now())
    job.run(restarted, 7)
    final = job.outputs[max(job.outputs)]
    assert final == sorted(Counter(w for t in TEXTS for w in t.split()).items())


def count_or_expire(key: str, value: int | None, state: State) -> tuple[str, object]:
    if state.is_timing_out():
        return key, "expired"
    total = state.get_option(0) + (value or 0)
    state.update(total)
    return key, total


def expiring_totals(words: Any) -> Any:
    return words.reduce_by_key(operator.add).map_with_state(
        StateSpec.of(count_or_expire, timeout=2.0)
    )


def expiring_reference(batches: int) -> list[list[tuple[str, object]]]:
    """Per batch: (word, running total) for its words, (word, "expired") for words idle 2 s."""
    totals: dict[str, int] = {}
    last: dict[str, int] = {}
    out = []
    for i, text in enumerate(TEXTS[:batches]):
        counts = Counter(text.split())
        mapped: list[tuple[str, object]] = []
        for word, n in counts.items():
            totals[word] = totals.get(word, 0) + n
            last[word] = i
            mapped.append((word, totals[word]))
        for word in [w for w in totals if w not in counts and i - last[w] >= 2]:
            mapped.append((word, "expired"))
            del totals[word], last[word]
        out.append(sorted(mapped))
    return out


def test_map_with_state_with_timeouts_resumes_exactly_after_a_stop(tmp_path: Path) -> None:
    """The restored state keeps each key's last update time, so timeouts fire as without a stop."""
    job = Job(tmp_path, expiring_totals)
    clock = ManualClock(1000.0)
    job.run(clock, 7)
    job.run(ManualClock(clock.now()), 7)
    assert [job.outputs[t] for t in sorted(job.outputs)] == expiring_reference(14)


def test_incremental_window_resumes_exactly_after_a_stop(tmp_path: Path) -> None:
    job = Job(tmp_path, windowed)
    clock = ManualClock(1000.0)
    job.run(clock, 5)
    job.run(ManualClock(clock.now()), 5)
    for index, batch_time in enumerate(sorted(job.outputs), start=1):
        assert job.outputs[batch_time] == window_reference(index), f"batch {index}"


def test_corrupt_newest_checkpoint_resumes_from_the_previous(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = Job(tmp_path, totals)
    clock = ManualClock(1000.0)
    job.run(clock, 6)
    newest = max(
        (p for p in Path(job.checkpoint).iterdir() if p.name.startswith("metadata-")),
        key=lambda p: tuple(int(x) for x in p.name.split("-")[1].split(".")),
    )
    newest.write_bytes(newest.read_bytes()[:20])
    with caplog.at_level(logging.WARNING):
        job.run(ManualClock(clock.now()), 4)
    assert str(newest) in caplog.text
    assert "recovered from checkpoint" in caplog.text
    final = job.outputs[max(job.outputs)]
    assert final == sorted(Counter(w for t in TEXTS[:10] for w in t.split()).items())


def test_a_state_checkpoint_newer_than_the_metadata_names_is_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver catching up writes metadata for batches generated ahead of those completed,
    so the newest metadata can name a data checkpoint older than every one still kept."""
    job = Job(tmp_path, totals)
    clock = ManualClock(1000.0)
    job.run(clock, 10)
    store = CheckpointStore(job.checkpoint)
    path, meta = store.read_newest("metadata")  # type: ignore[misc]
    meta["data_time"] = min(store.times("state")) - 3000
    write_atomically(path, meta)
    with caplog.at_level(logging.WARNING):
        job.run(ManualClock(clock.now()), 4)
    assert "no usable state checkpoint" not in caplog.text
    final = job.outputs[max(job.outputs)]
    assert final == sorted(Counter(w for t in TEXTS for w in t.split()).items())


def test_changed_graph_is_refused_with_what_changed_and_how_to_start_fresh(tmp_path: Path) -> None:
    job = Job(tmp_path, totals)
    clock = ManualClock(1000.0)
    job.run(clock, 2)
    changed = Job(tmp_path, lambda words: totals(words.filter(lambda kv: kv[0] != "a")))
    with pytest.raises(ConfigError) as refused:
        changed.run(ManualClock(clock.now()), 1)
    message = str(refused.value)
    assert "FilterOp" in message
    assert "empty checkpoint directory" in message
    assert job.checkpoint in message


def test_queue_stream_refuses_checkpointing(tmp_path: Path) -> None:
    ssc = StreamingContext(1.0, checkpoint=os.fspath(tmp_path), clock=ManualClock())
    ssc.queue_stream([[1]]).pprint()
    with pytest.raises(ConfigError, match="queue_stream cannot be checkpointed"):
        ssc.start()
    ssc.stop()
