"""What the autoscaler reads from the driver's status document (docs/status-api.md).

``metrics_from_status`` is a pure conversion: malformed or missing fields
become "unknown" (an empty batch list, ``None``), never an exception, so a
driver of another version cannot crash the operator; it only makes the
autoscaler say NO_DATA.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Batch:
    """One completed batch: batch time and processing start in Unix seconds, times in seconds."""

    batch_time: float
    records: int
    processing_start: float
    processing_time: float
    scheduling_delay: float


@dataclass(frozen=True)
class Executor:
    """A registered executor: whether it drains, how many receivers and blocks it holds."""

    id: str
    draining: bool
    receivers: int
    blocks: int


@dataclass(frozen=True)
class JobMetrics:
    """The driver's view of the job at ``time`` (the driver's clock, Unix seconds).

    ``batches`` are the completed batches it still lists, oldest first.
    ``scheduling_delay_trend`` is seconds of delay per second (None: unknown).
    ``arrivals`` are (batch time, records) of every batch it lists, oldest first, and
    ``queued`` the records of each batch queued or running, oldest first.
    ``running_since`` is when the oldest batch still processing started (Unix seconds on
    the driver's clock; None when none is).
    ``draining`` is true while any drain the driver was asked for is under way.
    ``partitions`` is the most tasks a batch's first stage has, when every input
    says (a Kafka direct stream: one per topic-partition); None when unknown.
    An executor runs one task at a time (the operator leaves ``cores`` at 1), so
    executors beyond it have nothing to do in that stage. ``records_counted`` is
    false when an input's records are not known when its batch is planned (a
    directory: its files are read on the executors, and count as 0 records, as
    in Spark).
    """

    time: float
    batch_interval: float
    batches: tuple[Batch, ...]
    arrivals: tuple[tuple[float, int], ...]
    queued: tuple[int, ...]
    scheduling_delay_trend: float | None
    pending_batches: int
    running_batches: int
    executors: tuple[Executor, ...]
    draining: bool
    partitions: int | None = None
    records_counted: bool = True
    running_since: float | None = None

    @property
    def active_executors(self) -> int:
        return sum(1 for e in self.executors if not e.draining)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _batch(raw: Any) -> Batch | None:
    if not isinstance(raw, Mapping) or raw.get("state") not in ("completed", "failed"):
        return None
    batch_ms = _num(raw.get("batch_time"))
    start = _num(raw.get("processing_start"))
    took = _num(raw.get("processing_time"))
    delay = _num(raw.get("scheduling_delay"))
    records = _num(raw.get("num_records"))
    if None in (batch_ms, start, took, delay, records):
        return None
    assert batch_ms is not None and start is not None and took is not None
    assert delay is not None and records is not None
    return Batch(batch_ms / 1000, int(records), start, took, delay)


def _executors(doc: Mapping[str, Any]) -> tuple[Executor, ...]:
    receivers: dict[str, int] = {}
    for r in doc.get("receivers") or []:
        if isinstance(r, Mapping) and r.get("executor_id") is not None:
            eid = str(r["executor_id"])
            receivers[eid] = receivers.get(eid, 0) + 1
    found = []
    for e in doc.get("executors") or []:
        if isinstance(e, Mapping) and "id" in e:
            eid = str(e["id"])
            blocks = _num(e.get("blocks"))
            found.append(
                Executor(eid, e.get("state") == "draining", receivers.get(eid, 0), int(blocks or 0))
            )
    return tuple(found)


def _partitions(doc: Mapping[str, Any]) -> int | None:
    """Tasks of a batch's first stage: the inputs' topic-partitions, if every input lists them."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return None
    total = 0
    for i in inputs:
        lag = i.get("lag") if isinstance(i, Mapping) else None
        if not isinstance(lag, Mapping):
            return None
        total += len(lag)
    return total or None


def metrics_from_status(doc: Mapping[str, Any]) -> JobMetrics | None:
    """The autoscaler's inputs from a ``v1`` status document; None for another version."""
    interval = _num(doc.get("batch_interval"))
    now = _num(doc.get("time"))
    if doc.get("api_version") != "v1" or not interval or interval <= 0 or now is None:
        return None
    summary = doc.get("summary")
    if not isinstance(summary, Mapping):
        summary = {}
    raw: Sequence[Any] = doc.get("batches") or []
    batches = sorted((b for b in map(_batch, raw) if b is not None), key=lambda b: b.batch_time)
    arrivals: list[tuple[float, int, bool]] = []
    started = [
        start
        for b in raw
        if isinstance(b, Mapping)
        and b.get("state") == "processing"
        and (start := _num(b.get("processing_start"))) is not None
    ]
    for b in raw:
        if not isinstance(b, Mapping):
            continue
        batch_ms, records = _num(b.get("batch_time")), _num(b.get("num_records"))
        if batch_ms is not None and records is not None:
            waiting = b.get("state") in ("queued", "processing")
            arrivals.append((batch_ms / 1000, int(records), waiting))
    arrivals.sort()
    decommissions = doc.get("decommissions")
    executors = _executors(doc)
    draining = any(e.draining for e in executors) or (
        isinstance(decommissions, Mapping) and "draining" in map(str, decommissions.values())
    )
    return JobMetrics(
        time=now,
        batch_interval=interval,
        batches=tuple(batches),
        arrivals=tuple((t, r) for t, r, _ in arrivals),
        queued=tuple(r for _, r, waiting in arrivals if waiting),
        scheduling_delay_trend=_num(summary.get("scheduling_delay_trend")),
        pending_batches=int(_num(summary.get("pending_batches")) or 0),
        running_batches=int(_num(summary.get("running_batches")) or 0),
        executors=executors,
        draining=draining,
        partitions=_partitions(doc),
        records_counted=not any(
            isinstance(i, Mapping) and "directory" in i for i in doc.get("inputs") or []
        ),
        running_since=min(started, default=None),
    )
