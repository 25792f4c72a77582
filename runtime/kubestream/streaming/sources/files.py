"""text_file_stream: new files in a directory, each read exactly once, by the executors.

Like Spark's file stream: files present when the stream starts are skipped,
names starting with '.' or '_' are ignored (write elsewhere and rename in), and
a large file is split at line boundaries into several partitions, so the
executors share it. No receiver: the set of files seen is the whole state, which
makes the source replayable from a checkpoint.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kubestream.core.rdd import RDD, SourceRDD, file_sources
from kubestream.streaming.sources.input_stream import InputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


def list_visible_files(directory: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(
        os.path.join(directory, n)
        for n in names
        if not n.startswith((".", "_")) and os.path.isfile(os.path.join(directory, n))
    )


class FileInputDStream(InputDStream):
    def __init__(self, env: StreamingEnv, directory: str, new_files_only: bool = True) -> None:
        super().__init__(env)
        self.directory = directory
        self.new_files_only = new_files_only
        self.seen: set[str] = set()
        self.files_per_batch: dict[int, list[str]] = {}
        self._restored = False

    def start(self) -> None:
        if self.new_files_only and not self._restored:
            self.seen.update(list_visible_files(self.directory))

    def checkpoint_state(self) -> dict[str, Any]:
        return {"seen": sorted(self.seen), "files_per_batch": dict(self.files_per_batch)}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.seen = set(state["seen"])
        self.files_per_batch = dict(state["files_per_batch"])
        self._restored = True

    def compute(self, batch_time: int) -> RDD | None:
        files = self.files_per_batch.get(batch_time)
        if files is None:
            files = [f for f in list_visible_files(self.directory) if f not in self.seen]
            self.seen.update(files)
            self.files_per_batch[batch_time] = files
        if not files:
            return self.env.engine.empty_rdd()
        return SourceRDD(self.env.engine, file_sources(files, self.env.engine.default_parallelism))

    def clear_metadata(self, batch_time: int) -> list:  # type: ignore[type-arg]
        """Keep recent batches' files: a recovering driver replays them from the checkpoint."""
        for t in [t for t in self.files_per_batch if t <= batch_time - self.history_ms]:
            del self.files_per_batch[t]
        return super().clear_metadata(batch_time)
