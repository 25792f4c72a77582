"""Windows over text_file_stream, on in-process executors and a manual clock, against a
plain-Python reference: each window holds exactly the files of its batches, a file
belonging to the first batch after it arrived. A window sliding slower than the batch
interval reads some batches one slide late; their files must still be the ones listed
at their own batch time."""

from __future__ import annotations

import operator
import os
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.core.rdd import RDD
from kubestream.streaming.dstream import DStream

WORDS = ["ant", "bee", "cat", "dog", "eel"]
BATCH = 1.0


def put(inbox: Path, name: str, lines: list[str], mtime: float) -> None:
    staged = inbox / f".{name}.staging"
    staged.write_text("".join(f"{line}\n" for line in lines))
    os.utime(staged, (mtime, mtime))
    staged.rename(inbox / name)


def windowed(lines: DStream[str], operation: str, window: float, slide: float) -> DStream:
    if operation == "window":
        return lines.window(window, slide)
    pairs = lines.flat_map(str.split).map(lambda w: (w, 1))
    if operation == "reduce_by_key_and_window":
        return pairs.reduce_by_key_and_window(operator.add, None, window, slide)
    return pairs.reduce_by_key_and_window(operator.add, operator.sub, window, slide)


def reference(operation: str, lines: list[str]) -> Counter[str]:
    if operation == "window":
        return Counter(lines)
    return Counter(word for line in lines for word in line.split())


def observed(operation: str, records: list) -> Counter[str]:  # type: ignore[type-arg]
    if operation == "window":
        return Counter(records)
    counts = Counter({word: n for word, n in records if n != 0})  # the inverse keeps zeros
    assert sum(1 for word, n in records if n != 0) == len(counts), "a key twice in a window"
    return counts


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files_per_batch=st.lists(
        st.lists(st.sampled_from([1, 4, 3000]), max_size=3), min_size=5, max_size=8
    ),
    shape=st.sampled_from([(3, 2), (2, 2), (4, 2), (5, 3), (3, 1)]),
    operation=st.sampled_from(
        ["window", "reduce_by_key_and_window", "reduce_by_key_and_window_with_inverse"]
    ),
    seed=st.integers(0, 2**16),
)
def test_each_window_holds_exactly_the_files_of_its_batches(
    tmp_path_factory: pytest.TempPathFactory,
    files_per_batch: list[list[int]],
    shape: tuple[int, int],
    operation: str,
    seed: int,
) -> None:
    rng = random.Random(seed)
    work = tmp_path_factory.mktemp("windows")
    inbox = work / "in"
    inbox.mkdir()
    window, slide = shape
    clock = ManualClock(1_000_000.0)
    ssc = StreamingContext(BATCH, clock=clock, checkpoint=str(work / "checkpoint"))
    outputs: dict[int, list] = {}  # type: ignore[type-arg]

    def keep(t: int, rdd: RDD) -> None:
        outputs[t] = rdd.collect()

    windowed(ssc.text_file_stream(str(inbox)), operation, window, slide).foreach_rdd(keep)
    ssc.start()
    arrived: dict[int, list[str]] = {}  # batch time (ms) -> lines that arrived before it
    try:
        for n, sizes in enumerate(files_per_batch):
            batch_time = round((clock.now() + BATCH) * 1000)
            arrived[batch_time] = []
            for k, size in enumerate(sizes):
                lines = [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(size)]
                put(inbox, f"b{n}-f{k}.txt", lines, clock.now() + rng.random() * BATCH * 0.9)
                arrived[batch_time] += lines
            clock.advance(BATCH)
            assert ssc.wait_for_batch(batch_time, 60)
    finally:
        ssc.stop()
    window_ms, slide_ms = window * 1000, slide * 1000
    first = min(arrived) - round(BATCH * 1000)
    expected_times = [t for t in arrived if (t - first) % slide_ms == 0]
    assert sorted(outputs) == expected_times
    for t, records in outputs.items():
        in_window = [x for b, lines in arrived.items() if t - window_ms < b <= t for x in lines]
        assert observed(operation, records) == reference(operation, in_window), (
            f"window ending at batch {(t - first) // 1000} of {len(arrived)}"
        )


def test_a_batch_between_a_windows_slides_reads_none_of_its_inputs(tmp_path: Path) -> None:
    """So its completion commits nothing of them (Kafka's offsets): the batch at the next
    slide reads them, and commits after its outputs ran."""
    ssc = StreamingContext(BATCH, clock=ManualClock(0.0))
    files = ssc.text_file_stream(str(tmp_path))
    queued = ssc.queue_stream([[1]])
    ssc.queue_stream([[2]])  # no output reads it
    files.window(3, 2).pprint()
    queued.pprint()
    graph = ssc.graph
    assert graph.inputs_read_by(graph.outputs) == [files, queued]
    assert graph.inputs_read_at(2000) == [files, queued]
    assert graph.inputs_read_at(3000) == [queued]
