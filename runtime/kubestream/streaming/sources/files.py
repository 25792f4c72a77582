"""text_file_stream: new files in a directory, each read once, by the executors.

Like Spark's FileInputDStream: the driver lists the directory every batch and
selects files that pass the path filter, were modified within the remember
window, and were not selected before; each selected file becomes one partition,
read on an executor (decompressed by extension, records ended as Hadoop's line
reader ends them), and a large uncompressed one several byte-range splits (about
the batch's bytes over the default parallelism each, cut as Hadoop's line reader
cuts them), so the executors share a batch of one big file. No receiver: the
selected files are the stream's whole state, which makes it replayable from a
checkpoint.

The remembered files are bounded the way Spark bounds them: a file is remembered
until its modification time and the batch that selected it both fall out of the
remember window, and files modified before the window are ignored, so the set
(and every metadata checkpoint) holds only the files of the last window.

A file listed for a batch and gone when its task opens it (a copy tool's rename,
log rotation, a delete) is skipped with a warning and counted; it is forgotten,
so a file that appears again under its name is read. A directory that cannot be
listed is warned about at start and at most every LISTING_WARNING_INTERVAL
afterwards, and shown in the status document until it can be listed again.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubestream.core.input_files import InputEvent, byte_ranges, is_compressed, split_bytes
from kubestream.core.rdd import RDD, SourceRDD
from kubestream.core.tasks import FileSource
from kubestream.streaming.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv

log = logging.getLogger(__name__)

PathFilter = Callable[[str], bool]

IN_PROGRESS_SUFFIXES = (
    "._COPYING_",
    ".tmp",
    ".temp",
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".filepart",
    ".inprogress",
    ".swp",
    "~",
)
"""Name endings of files still being written: `hdfs dfs -put` (`._COPYING_`), curl and
wget (`.part`), browsers, WinSCP, Flink's file sink, editors."""

DEFAULT_MIN_REMEMBER_DURATION = 60.0
"""Seconds (Spark's spark.streaming.fileStream.minRememberDuration)."""

LISTING_WARNING_INTERVAL = 60.0
"""Seconds between repeated warnings about a directory that cannot be listed."""


def default_path_filter(path: str) -> bool:
    """Whether text_file_stream reads `path` by default: not a hidden or underscore name
    (Hadoop's hidden files, `_SUCCESS`), not a name of a file still being written
    (IN_PROGRESS_SUFFIXES)."""
    name = os.path.basename(path)
    return not name.startswith((".", "_")) and not name.endswith(IN_PROGRESS_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing of the directory: regular files passing the filter, with their
    modification times (ms), or why the directory could not be listed."""

    files: dict[str, int]
    problem: str | None = None


def list_files(directory: str, path_filter: PathFilter) -> Listing:
    """The files of `directory` that `path_filter` accepts; a file that vanishes while
    being listed is left out, a directory that cannot be listed gives `problem`."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return Listing({}, f"directory {directory!r} does not exist")
    except NotADirectoryError:
        return Listing({}, f"{directory!r} is not a directory")
    except OSError as exc:
        return Listing({}, f"cannot list directory {directory!r}: {exc.strerror or exc}")
    files = {}
    for entry in entries:
        try:
            if not path_filter(entry.path) or not entry.is_file():
                continue
            files[entry.path] = entry.stat().st_mtime_ns // 1_000_000
        except FileNotFoundError:
            continue
    return Listing(files)


def select_new_files(
    listed: dict[str, int], remembered: dict[str, int], threshold_ms: int | None
) -> list[str]:
    """Spark's isNewFile: not remembered, and modified at or after `threshold_ms` (None:
    no threshold). Sorted by modification time, then name."""
    new = [
        path
        for path, mtime in listed.items()
        if path not in remembered and (threshold_ms is None or mtime >= threshold_ms)
    ]
    return sorted(new, key=lambda p: (listed[p], p))


def _splittable_size(path: str) -> int | None:
    """The file's size when it can be split (uncompressed, still there), else None."""
    if is_compressed(path):
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None  # its task reports it gone


class FileInputDStream(InputDStream):
    """Spark's FileInputDStream over text files; see the module docstring."""

    def __init__(
        self,
        env: StreamingEnv,
        directory: str,
        *,
        path_filter: PathFilter | None = None,
        new_files_only: bool = True,
        min_remember_duration: float = DEFAULT_MIN_REMEMBER_DURATION,
        encoding: str = "utf-8",
        on_decode_error: str = "replace",
    ) -> None:
        super().__init__(env)
        self.directory = directory
        self.path_filter = path_filter or default_path_filter
        self.new_files_only = new_files_only
        self.encoding = encoding
        self.on_decode_error = on_decode_error
        self.split_alignment = 1
        """Splits are cut at multiples of this many bytes (a fixed record length)."""
        interval = env.batch_interval_ms
        self.remember_window_ms = math.ceil(min_remember_duration * 1000 / interval) * interval
        # path -> the later of its modification time and its selecting batch's time (ms):
        # the file is forgotten once that falls out of the remember window.
        self.remembered: dict[str, int] = {}
        self.files_per_batch: dict[int, list[str]] = {}
        self.files_selected = 0
        self.files_missing = 0
        self.records_undecodable = 0
        self.problem: str | None = None
        self._last_warning_ms: int | None = None
        self._warned_at_start = False
        self._directory_prefix = os.path.dirname(os.path.join(directory, "f"))
        self._first_listing = True
        self._restored = False
        self._lock = threading.Lock()

    def start(self) -> None:
        self.env.engine.input_listeners.append(self._input_event)
        if self._restored:
            return
        listing = list_files(self.directory, self.path_filter)
        if listing.problem is not None:
            self._report_problem(listing.problem, None)
        if self.new_files_only:
            self._first_listing = False
            for path, mtime in listing.files.items():
                self.remembered[path] = mtime

    def stop(self) -> None:
        if self._input_event in self.env.engine.input_listeners:
            self.env.engine.input_listeners.remove(self._input_event)

    def checkpoint_state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "remembered": dict(self.remembered),
                "files_per_batch": dict(self.files_per_batch),
            }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.remembered = dict(state["remembered"])
        self.files_per_batch = dict(state["files_per_batch"])
        self._first_listing = False
        self._restored = True

    def compute(self, batch_time: int) -> RDD | None:
        files = self.files_per_batch.get(batch_time)
        if files is None:
            files = self._select(batch_time)
        if not files:
            return self.env.engine.empty_rdd()
        sizes = {path: _splittable_size(path) for path in files}
        target = split_bytes(sum(filter(None, sizes.values())), self.env.engine.default_parallelism)
        sources = [
            self.file_source(path, start, stop)
            for path in files
            for start, stop in byte_ranges(sizes[path], target, self.split_alignment)
        ]
        return SourceRDD(self.env.engine, sources)

    def file_source(self, path: str, start: int = 0, stop: int | None = None) -> FileSource:
        """How an executor reads one split of a selected file: text, in this stream's
        encoding."""
        return FileSource(path, self.encoding, self.on_decode_error, start=start, stop=stop)

    def _select(self, batch_time: int) -> list[str]:
        listing = list_files(self.directory, self.path_filter)
        if listing.problem is not None:
            self._report_problem(listing.problem, batch_time)
        elif self.problem is not None:
            log.info("input %s: %s can be listed again", self.id, self.directory)
            self.problem, self._last_warning_ms, self._warned_at_start = None, None, False
        threshold = None if self._first_listing else batch_time - self.remember_window_ms
        self._first_listing = False
        with self._lock:
            files = select_new_files(listing.files, self.remembered, threshold)
            for path in files:
                self.remembered[path] = max(listing.files[path], batch_time)
            self.files_per_batch[batch_time] = files
            self.files_selected += len(files)
        return files

    def _report_problem(self, problem: str, batch_time: int | None) -> None:
        """Warn at start (batch_time None), then at most every LISTING_WARNING_INTERVAL of
        batch time; the problem stays in the status document until a listing works."""
        self.problem = problem
        last = self._last_warning_ms
        if batch_time is not None:
            if last is None and self._warned_at_start:
                self._last_warning_ms = batch_time
                return
            if last is not None and batch_time - last < LISTING_WARNING_INTERVAL * 1000:
                return
            self._last_warning_ms = batch_time
        else:
            self._warned_at_start = True
        log.warning(
            "input %s (text_file_stream): %s; no files are read until it can be listed",
            self.id,
            problem,
        )

    def _input_event(self, event: InputEvent) -> None:
        """A task's report of a file of this stream (from the transport thread)."""
        if event.stream_id is not None or os.path.dirname(event.path) != self._directory_prefix:
            return
        with self._lock:
            if event.kind == "missing":
                self.files_missing += 1
                self.remembered.pop(event.path, None)
            elif event.kind == "undecodable":
                self.records_undecodable += event.records
        log.warning("input %s: %s: %s", self.id, event.path, event.detail)

    def input_details(self) -> dict[str, Any]:
        with self._lock:
            return {
                "directory": self.directory,
                "problem": self.problem,
                "files_selected": self.files_selected,
                "files_missing": self.files_missing,
                "records_undecodable": self.records_undecodable,
                "remembered_files": len(self.remembered),
            }

    def clear_metadata(self, batch_time: int) -> list:  # type: ignore[type-arg]
        """Forget files out of the remember window, and batches' file lists older than the
        history a recovering driver replays."""
        with self._lock:
            for t in [t for t in self.files_per_batch if t <= batch_time - self.history_ms]:
                del self.files_per_batch[t]
            horizon = batch_time - self.remember_window_ms
            for path in [p for p, t in self.remembered.items() if t < horizon]:
                del self.remembered[path]
        return super().clear_metadata(batch_time)
