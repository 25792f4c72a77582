"""text_file_stream on in-process executors and a manual clock: files that vanish, names of
files still being written, a directory that is not there, a bounded remembered set."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubestream import ConfigError, StreamingContext, default_path_filter
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from kubestream.driver.status import context_status
from kubestream.storage.checkpoint_store import CheckpointStore
from kubestream.streaming.checkpointing import METADATA


class Run:
    """A context over one directory, driven batch by batch; outputs kept per batch."""

    def __init__(
        self,
        inbox: Path,
        clock: ManualClock,
        transform: Callable[[RDD], RDD] | None = None,
        checkpoint: str | None = None,
        **options: Any,
    ) -> None:
        self.clock = clock
        # Data checkpoints every batch: sources keep 10 of them plus 2 batches of history.
        self.ssc = StreamingContext(1.0, clock=clock, checkpoint=checkpoint, checkpoint_interval=1)
        self.stream = self.ssc.text_file_stream(str(inbox), **options)
        lines = self.stream.transform(transform) if transform else self.stream
        self.outputs: dict[int, list[str]] = {}
        lines.foreach_rdd(lambda t, rdd: self.outputs.__setitem__(t, rdd.collect()))
        self.ssc.start()

    def batch(self) -> int:
        self.clock.advance(1.0)
        t = round(self.clock.now() * 1000)
        assert self.ssc.wait_for_batch(t, 30)
        return t

    def records(self) -> list[str]:
        return [r for t in sorted(self.outputs) for r in self.outputs[t]]

    def details(self) -> dict[str, Any]:
        status = context_status(self.ssc, "test")
        (entry,) = status["inputs"]
        return entry  # type: ignore[no-any-return]


def put(inbox: Path, name: str, text: str, mtime: float | None = None) -> Path:
    staged = inbox / f".{name}.staging"
    staged.write_text(text)
    if mtime is not None:
        os.utime(staged, (mtime, mtime))
    return staged.rename(inbox / name)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "in"
    path.mkdir()
    return path


def test_a_file_gone_before_its_task_is_skipped_and_counted_and_nothing_else_lost(
    inbox: Path,
) -> None:
    victim = inbox / "b.txt"

    def vanish(rdd: RDD) -> RDD:
        # Runs on the driver after the batch's files were chosen, before any task reads them.
        if victim.exists():
            victim.unlink()
        return rdd

    clock = ManualClock(1000.0)
    run = Run(inbox, clock, transform=vanish)
    for name in ("a.txt", "b.txt", "c.txt"):
        put(inbox, name, f"{name} 1\n{name} 2\n")
    first = run.batch()
    assert sorted(run.outputs[first]) == ["a.txt 1", "a.txt 2", "c.txt 1", "c.txt 2"]
    assert not any(b.failed for b in run.ssc.batches)
    details = run.details()
    assert (details["files_selected"], details["files_missing"]) == (3, 1)
    # Forgotten, not remembered as read: a file that comes back under its name is read.
    victim_back = put(inbox, "b.txt.new", "b again\n")
    victim_back.rename(inbox / "d.txt")
    run.batch()
    assert run.records()[-1] == "b again"
    run.ssc.stop()


def test_a_large_file_is_shared_by_several_splits_and_read_whole(inbox: Path) -> None:
    parts: list[int] = []

    def count_partitions(rdd: RDD) -> RDD:
        parts.append(rdd.num_partitions)
        return rdd

    run = Run(inbox, ManualClock(1000.0), transform=count_partitions)
    lines = [f"line {i} {'x' * (i % 97)}" for i in range(60_000)]  # about 3.4 MB
    put(inbox, "big.txt", "\r\n".join(lines))
    put(inbox, "small.gz.txt", "one\ntwo\n")
    run.batch()
    run.ssc.stop()
    assert parts == [run.ssc.engine.default_parallelism + 1]
    assert sorted(run.records()) == sorted([*lines, "one", "two"])


def test_a_binary_records_file_gone_before_its_task_is_skipped_and_counted(inbox: Path) -> None:
    victim = inbox / "b.bin"

    def vanish(rdd: RDD) -> RDD:
        if victim.exists():
            victim.unlink()
        return rdd

    clock = ManualClock(1000.0)
    ssc = StreamingContext(1.0, clock=clock)
    records: list[bytes] = []
    ssc.binary_records_stream(str(inbox), 2).transform(vanish).foreach_rdd(
        lambda rdd: records.extend(rdd.collect())
    )
    ssc.start()
    for name in ("a.bin", "b.bin", "c.bin"):
        put(inbox, name, name[:1] * 4)
    clock.advance(1.0)
    assert ssc.wait_for_batch(round(clock.now() * 1000), 30)
    assert sorted(records) == [b"aa", b"aa", b"cc", b"cc"]
    assert not any(b.failed for b in ssc.batches)
    (entry,) = context_status(ssc, "test")["inputs"]
    assert entry["files_missing"] == 1
    ssc.stop()


def test_names_of_files_being_written_are_not_read_until_renamed(inbox: Path) -> None:
    clock = ManualClock(1000.0)
    run = Run(inbox, clock)
    writing = ["x._COPYING_", "x.tmp", "x.part", ".x", "_SUCCESS", "x.crdownload", "x~"]
    for name in writing:
        (inbox / name).write_text(f"{name}\n")
    run.batch()
    assert run.records() == []
    (inbox / "x._COPYING_").rename(inbox / "x")
    run.batch()
    assert run.records() == ["x._COPYING_"]
    run.ssc.stop()


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("data.json", True),
        ("data.json.gz", True),
        ("part-00000", True),
        ("data._COPYING_", False),
        ("data.json.tmp", False),
        ("data.part", False),
        (".data", False),
        ("_temporary", False),
    ],
)
def test_default_path_filter(name: str, read: bool) -> None:
    assert default_path_filter(f"/in/{name}") is read


def test_a_path_filter_chooses_the_files(inbox: Path) -> None:
    clock = ManualClock(1000.0)
    run = Run(inbox, clock, path_filter=lambda p: p.endswith(".csv"))
    put(inbox, "a.csv", "a\n")
    put(inbox, "b.json", "b\n")
    run.batch()
    assert run.records() == ["a"]
    run.ssc.stop()


def test_a_missing_directory_is_warned_about_at_a_bounded_rate_and_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "typo"
    clock = ManualClock(1000.0)
    with caplog.at_level(logging.WARNING, logger="kubestream.streaming.sources.files"):
        run = Run(inbox, clock)
        assert len(caplog.records) == 1
        for _ in range(300):
            run.batch()
    warnings = [r for r in caplog.records if "does not exist" in r.getMessage()]
    assert 2 <= len(warnings) <= 1 + 300 // 60
    assert "does not exist" in run.details()["problem"]
    inbox.mkdir()
    put(inbox, "late.txt", "late\n")
    run.batch()
    assert run.records() == ["late"]
    assert run.details()["problem"] is None
    run.ssc.stop()


def test_undecodable_records_follow_the_policy_and_show_in_the_status(inbox: Path) -> None:
    clock = ManualClock(1000.0)
    run = Run(inbox, clock, on_decode_error="skip")
    (inbox / "mixed.txt").write_bytes(b"good\nbad \xff\nalso good\n")
    run.batch()
    assert run.records() == ["good", "also good"]
    assert run.details()["records_undecodable"] == 1
    run.ssc.stop()


def metadata_bytes(checkpoint: str) -> int:
    newest = CheckpointStore(checkpoint).read_newest(METADATA)
    assert newest is not None
    return os.path.getsize(newest[0])


def test_remembered_files_and_the_checkpoint_stay_bounded_and_every_file_is_read_once(
    tmp_path: Path, inbox: Path
) -> None:
    clock = ManualClock(1_000_000.0)
    checkpoint = str(tmp_path / "ckpt")
    run = Run(inbox, clock, checkpoint=checkpoint, min_remember_duration=5)
    expected = []
    sizes = []
    for n in range(60):
        for k in range(4):
            name = f"f{n:03d}-{k}-{'x' * 40}"
            put(inbox, name, f"{name}\n", mtime=clock.now())
            expected.append(name)
        run.batch()
        sizes.append(metadata_bytes(checkpoint))
    assert sorted(run.records()) == sorted(expected)
    # The window is 5 batches of 4 files, plus the batch being read: not the 240 read.
    assert run.details()["remembered_files"] <= 4 * 7
    # Past the 12 batches of history a recovering driver replays, the size stops growing:
    # keeping every file read would add about 280 bytes a batch, 5.6 KB over the last 20.
    # (The slack covers a checkpoint read between a batch's two writes.)
    assert max(sizes[40:]) <= 1.25 * max(sizes[15:40])
    run.ssc.stop()


def test_files_modified_before_the_window_are_ignored(inbox: Path) -> None:
    clock = ManualClock(1_000_000.0)
    run = Run(inbox, clock, min_remember_duration=5)
    run.batch()
    put(inbox, "old.txt", "old\n", mtime=clock.now() - 60)
    put(inbox, "new.txt", "new\n", mtime=clock.now())
    run.batch()
    assert run.records() == ["new"]
    run.ssc.stop()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"path_filter": "*.csv"}, "path_filter must be None or a function"),
        ({"min_remember_duration": -1}, "min_remember_duration must be a number"),
        ({"min_remember_duration": True}, "min_remember_duration"),
        ({"encoding": "utf-16"}, "encoding must be a text encoding"),
        ({"encoding": "no-such-codec"}, "'no-such-codec'"),
        ({"on_decode_error": "ignore"}, "on_decode_error must be 'replace' or 'skip' or 'fail'"),
    ],
)
def test_bad_options_name_the_value(inbox: Path, options: dict[str, Any], named: str) -> None:
    ssc = StreamingContext(1.0, clock=ManualClock(0.0))
    with pytest.raises(ConfigError, match=named):
        ssc.text_file_stream(str(inbox), **options)
