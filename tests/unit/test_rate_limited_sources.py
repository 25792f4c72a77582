"""A rate-limited direct source reads at most its limit per batch, leaves the rest in the
source, and after a restart from a checkpoint reads on from exactly where it stopped."""

from __future__ import annotations

from pathlib import Path

from kubestream import StreamingContext
from kubestream.clock import ManualClock
from kubestream.streaming.sources.rate import RateInputDStream


def run(
    clock: ManualClock, batches: int, outputs: dict[int, list[int]], **options: object
) -> RateInputDStream:
    ssc = StreamingContext(1.0, clock=clock, executors=2, **options)  # type: ignore[arg-type]
    stream = ssc.rate_stream(1000)
    assert isinstance(stream, RateInputDStream)
    stream.foreach_rdd(lambda t, rdd: outputs.__setitem__(t, rdd.collect()))
    ssc.start()
    try:
        for _ in range(batches):
            clock.advance(1.0)
            info = ssc.wait_for_batch(round(clock.now() * 1000), 30)
            assert not info.failed, info.errors
    finally:
        ssc.stop()
    return stream


def test_max_rate_caps_every_batch_and_leaves_the_rest_in_the_source() -> None:
    clock = ManualClock(1000.0)
    outputs: dict[int, list[int]] = {}
    stream = run(clock, 5, outputs, max_rate=300)
    ordered = [outputs[t] for t in sorted(outputs)]
    assert [len(batch) for batch in ordered] == [300] * 5
    assert [r for batch in ordered for r in batch] == list(range(1500))
    assert stream.backlog(round(clock.now() * 1000)) == 5000 - 1500


def test_without_a_limit_every_batch_reads_all_that_was_produced() -> None:
    outputs: dict[int, list[int]] = {}
    run(ManualClock(1000.0), 3, outputs)
    assert [outputs[t] for t in sorted(outputs)] == [
        list(range(0, 1000)),
        list(range(1000, 2000)),
        list(range(2000, 3000)),
    ]


def test_a_restarted_job_reads_on_from_the_checkpointed_position(tmp_path: Path) -> None:
    checkpoint = str(tmp_path / "checkpoint")
    clock = ManualClock(1000.0)
    outputs: dict[int, list[int]] = {}
    run(clock, 4, outputs, max_rate=250, checkpoint=checkpoint)
    run(ManualClock(clock.now()), 4, outputs, max_rate=250, checkpoint=checkpoint)
    records = [r for t in sorted(outputs) for r in outputs[t]]
    assert records == list(range(len(records))), "a record was lost or read twice"
    assert len(records) == 8 * 250
