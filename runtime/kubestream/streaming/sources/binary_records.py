"""binary_records_stream: new files in a directory, read as fixed-length byte records.

A file stream (see files.py: each new file once, hidden names ignored) whose
files executors split into records of `record_length` bytes instead of lines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubestream.core.tasks import FileSource
from kubestream.errors import require_count
from kubestream.streaming.sources.files import FileInputDStream

if TYPE_CHECKING:
    from kubestream.streaming.env import StreamingEnv


class BinaryRecordsInputDStream(FileInputDStream):
    def __init__(self, env: StreamingEnv, directory: str, record_length: int) -> None:
        require_count("record_length", record_length)
        super().__init__(env, directory)
        self.record_length = record_length
        self.split_alignment = record_length

    def file_source(self, path: str, start: int = 0, stop: int | None = None) -> FileSource:
        return FileSource(path, record_length=self.record_length, start=start, stop=stop)
