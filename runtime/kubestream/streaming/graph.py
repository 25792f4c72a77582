"""DStreamGraph: the streams of one application, its inputs and its output operations."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubestream.core.rdd import RDD
from kubestream.errors import ConfigError
from kubestream.streaming.scheduler.job_scheduler import Job

if TYPE_CHECKING:
    from kubestream.streaming.dstream import DStream
    from kubestream.streaming.sources.input_stream import InputDStream

OutputFn = Callable[[int, RDD], None]


class DStreamGraph:
    def __init__(self) -> None:
        self.streams: list[DStream] = []
        self.inputs: list[InputDStream] = []
        self.outputs: list[tuple[DStream, OutputFn]] = []
        self.zero_time = 0

    def register(self, stream: DStream) -> int:
        self.streams.append(stream)
        return len(self.streams) - 1

    def add_input(self, stream: InputDStream) -> None:
        self.inputs.append(stream)

    def add_output(self, stream: DStream, fn: OutputFn) -> None:
        self.outputs.append((stream, fn))

    def validate(self) -> None:
        if not self.outputs:
            raise ConfigError(
                "no output operations registered, so nothing to execute: "
                "add pprint(), foreach_rdd() or save_as_text_files() to a stream"
            )

    def generate_jobs(self, batch_time: int) -> list[Job]:
        """The jobs of `batch_time` (ms), after computing every input an output reads.

        What an input gives a batch (the files listed, the Kafka offsets planned, the RDD
        taken from a queue) is fixed when the batch is generated, as received blocks are
        allocated to it, even when no output reads that batch yet: a window sliding slower
        than the batch interval reads such a batch one slide later, and listing or planning
        it then would give it the next batch's data too, so later windows missed it.
        """
        for source in self.inputs_read_by(self.outputs):
            source.get_or_compute(batch_time)
        jobs = []
        for output_id, (stream, fn) in enumerate(self.outputs):
            rdd = stream.get_or_compute(batch_time)
            if rdd is not None:
                jobs.append(Job(output_id, functools.partial(fn, batch_time, rdd)))
        return jobs

    def inputs_read_at(self, batch_time: int) -> list[InputDStream]:
        """The inputs that an output running at `batch_time` (ms) reads: a batch where no
        output reading an input runs (a window between slides) leaves that input's data to
        the batch that reads it, and so its commit of what was read (Kafka's offsets)."""
        return self.inputs_read_by([o for o in self.outputs if o[0].is_time_valid(batch_time)])

    def inputs_read_by(self, outputs: list[tuple[DStream, OutputFn]]) -> list[InputDStream]:
        """The inputs the given output operations' streams descend from, in graph order."""
        reached: set[int] = set()
        stack = [stream for stream, _ in outputs]
        while stack:
            stream = stack.pop()
            if stream.id not in reached:
                reached.add(stream.id)
                stack.extend(stream.parents)
        return [stream for stream in self.inputs if stream.id in reached]

    def output_details(self) -> list[dict[str, Any]]:
        """What output operations that count their work report (a sink's `output_details()`:
        rows written, records refused and skipped), each with its output and stream id."""
        found = []
        for output_id, (stream, fn) in enumerate(self.outputs):
            details = getattr(fn, "output_details", None)
            if callable(details):
                found.append({"output_id": output_id, "stream_id": stream.id, **details()})
        return found

    def clear_metadata(self, batch_time: int) -> list[RDD]:
        dropped: list[RDD] = []
        for stream in self.streams:
            dropped += stream.clear_metadata(batch_time)
        return dropped

    def fingerprint(self) -> list[str]:
        """One line per stream: id, kind and parents. Code inside functions may change freely."""
        return [f"{s.id}: {s.describe()} <- {[p.id for p in s.parents]}" for s in self.streams] + [
            f"output {i}: on stream {stream.id}" for i, (stream, _) in enumerate(self.outputs)
        ]

    def max_remember_ms(self) -> int:
        return max((s.remember_ms for s in self.streams), default=0)

    def input_remember_ms(self) -> int:
        return max((s.remember_ms for s in self.inputs), default=0)
