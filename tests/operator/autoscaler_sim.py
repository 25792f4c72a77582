"""A deterministic simulator of a kubestream job under three scaling rules.

The job: a batch every ``interval`` seconds with ``rate(t) * interval`` records
(+/- ``rate_noise``), processed one batch at a time in ``fixed + per_record *
records / n`` seconds (+/- ``time_noise``) on the ``n`` executors that are up
when it starts. An added executor pod is usable ``pod_start`` seconds after the
rule asks for it. Removing one either drains it (kubestream: it takes no more
tasks and is gone ``drain`` seconds later) or kills it (Spark, HPA): its state
and cached blocks are recomputed, which adds ``recompute_batches`` batches'
worth of its share to the next batch.

The rules, each called at its own period with what it would see:
- ``Kubestream``: the operator's ``decide`` on a driver status document built
  here in the documented v1 shape (docs/status-api.md), its state round-tripped
  through the job-status fields, as the operator does.
- ``SparkDynamicAllocation``: Spark Streaming's ExecutorAllocationManager
  (spark.streaming.dynamicAllocation.*): every 60 s, mean processing time /
  batch interval >= 0.9 asks for max(round(ratio), 1) more executors; <= 0.3
  kills one, without draining.
- ``HpaStyle``: a HorizontalPodAutoscaler on the processing ratio (target 0.7,
  tolerance 0.1, 15 s sync, mean over the last 60 s), scale-up at most
  max(4 pods, 100%) per sync, scale-down to the highest recommendation of the
  last 300 s, pods deleted without draining.

Run as a script (``python -m tests.operator.autoscaler_sim [--plots]``) to print
the comparison table of docs/autoscaling.md and, with matplotlib installed, draw
the pictures beside it.
"""

import bisect
import functools
import importlib
import math
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kubestream_operator.autoscaler import AutoscalerState, Policy, decide, metrics_from_status
from kubestream_operator.autoscaler.state import read_state, state_fields

Rate = Callable[[float], float]
REPO_DOC = Path(__file__).resolve().parents[2] / "docs" / "autoscaling.md"


@dataclass(frozen=True)
class JobModel:
    """The simulated job's costs (seconds, records) and the cluster's delays."""

    interval: float = 2.0
    fixed: float = 0.2
    per_record: float = 0.001
    rate_noise: float = 0.2
    time_noise: float = 0.05
    pod_start: float = 20.0
    drain: float = 10.0
    recompute_batches: float = 5.0

    def ratio(self, rate: float, executors: int) -> float:
        """Mean processing time / interval at ``rate`` records/s on ``executors``."""
        return (self.fixed + self.per_record * rate * self.interval / executors) / self.interval

    def best(self, rate: float, target: float, most: int) -> int:
        """Fewest executors with a mean ratio at ``rate`` of at most ``target`` (else ``most``)."""
        return next((k for k in range(1, most + 1) if self.ratio(rate, k) <= target), most)


@dataclass
class Pod:
    id: int
    asked: float
    ready_at: float
    leaving_at: float | None = None
    draining: bool = False


@dataclass
class SimBatch:
    time: float
    records: int
    start: float = 0.0
    end: float = 0.0
    executors: int = 0


class Job:
    """The simulated job and its executor pods; the rules act on it."""

    def __init__(self, model: JobModel, rate: Rate, executors: int, seed: int) -> None:
        self.model = model
        self.rate = rate
        self.rng = random.Random(seed)
        self.pods = [Pod(i, -model.pod_start, 0.0) for i in range(executors)]
        self.next_id = executors
        self.batches: list[SimBatch] = []
        self.queue: list[SimBatch] = []
        self.busy_until = 0.0
        self.penalty = 0.0
        self.actions: list[tuple[float, int, int]] = []
        self.executor_seconds = 0.0
        self.samples: list[tuple[float, float, int]] = []  # (time, rate, pods)

    def live(self, t: float) -> list[Pod]:
        return [p for p in self.pods if p.leaving_at is None or p.leaving_at > t]

    def working(self, t: float) -> int:
        return sum(1 for p in self.live(t) if p.ready_at <= t and not p.draining)

    @property
    def desired(self) -> int:
        return sum(1 for p in self.pods if p.leaving_at is None)

    def scale(self, now: float, target: int, drain: bool) -> None:
        current = self.desired
        if target == current:
            return
        self.actions.append((now, current, target))
        if target > current:
            for _ in range(target - current):
                self.pods.append(Pod(self.next_id, now, now + self.model.pod_start))
                self.next_id += 1
            return
        staying = sorted((p for p in self.pods if p.leaving_at is None), key=lambda p: p.id)
        for pod in staying[target:]:
            if drain:
                pod.draining, pod.leaving_at = True, now + self.model.drain
            else:
                pod.leaving_at = now
                if pod.ready_at <= now:
                    self._lost_state(now)

    def _lost_state(self, now: float) -> None:
        n = max(self.working(now), 1)
        recent = self.batches[-1].records if self.batches else 0
        self.penalty += self.model.recompute_batches * self.model.per_record * recent / (n + 1)

    def advance(self, now: float, tick: float) -> None:
        """Generate the batches due by ``now`` and run the queue up to ``now``."""
        m = self.model
        k = len(self.batches) + len(self.queue)
        while (k + 1) * m.interval <= now:
            k += 1
            t = k * m.interval
            noise = 1 + self.rng.uniform(-m.rate_noise, m.rate_noise)
            self.queue.append(SimBatch(t, max(0, round(self.rate(t) * m.interval * noise))))
        while self.queue and self.busy_until <= now:
            b = self.queue.pop(0)
            b.start = max(b.time, self.busy_until)
            n = max(self.working(b.start), 1)
            took = m.fixed + m.per_record * b.records / n + self.penalty
            self.penalty = 0.0
            b.end = b.start + took * (1 + self.rng.uniform(-m.time_noise, m.time_noise))
            b.executors = n
            self.busy_until = b.end
            self.batches.append(b)
        self.executor_seconds += len(self.live(now)) * tick
        self.samples.append((now, self.rate(now), len(self.live(now))))

    def ended(self, after: float, until: float) -> list[SimBatch]:
        """Batches that ended in (``after``, ``until``]. Batches run one at a time, in
        order, so their ends ascend: bisection keeps a long trace linear in its length."""
        first = bisect.bisect_right(self.batches, after, key=lambda b: b.end)
        last = bisect.bisect_right(self.batches, until, key=lambda b: b.end)
        return self.batches[first:last]

    def completed(self, now: float) -> list[SimBatch]:
        return self.ended(-math.inf, now)

    def status_document(self, now: float, window: float = 80.0) -> dict[str, Any]:
        """The driver's ``/api/v1/status`` document (the fields the operator reads)."""
        interval = self.model.interval
        done = [b for b in self.ended(now - window, now) if b.time >= now - window]
        running = self.ended(now, math.inf)
        waiting = [
            {"batch_time": round(b.time * 1000), "state": "queued", "num_records": b.records}
            for b in reversed(self.queue)
        ]
        waiting += [
            {
                "batch_time": round(b.time * 1000),
                "state": "processing",
                "num_records": b.records,
                "processing_start": b.start,
            }
            for b in running
        ]
        trend = _slope([(b.time, b.start - b.time) for b in done if b.time >= now - 60])
        return {
            "api_version": "v1",
            "time": now,
            "batch_interval": interval,
            "summary": {
                "scheduling_delay_trend": trend,
                "pending_batches": len(self.queue),
                "running_batches": len(running),
            },
            "batches": waiting
            + [
                {
                    "batch_time": round(b.time * 1000),
                    "state": "completed",
                    "num_records": b.records,
                    "processing_start": b.start,
                    "processing_time": b.end - b.start,
                    "scheduling_delay": b.start - b.time,
                }
                for b in reversed(done)
            ],
            "executors": [
                {"id": str(p.id), "state": "draining" if p.draining else "active", "blocks": 0}
                for p in self.live(now)
                if p.ready_at <= now
            ],
            "receivers": [],
            "decommissions": {str(p.id): "draining" for p in self.live(now) if p.draining},
        }


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


class Rule(Protocol):
    name: str
    period: float
    drains: bool

    def target(self, job: Job, now: float) -> int | None: ...


@dataclass
class Kubestream:
    """kubestream's autoscaler, fed the status document as the operator feeds it."""

    policy: Policy
    name: str = "kubestream"
    period: float = 10.0
    drains: bool = True
    status: dict[str, Any] = field(default_factory=dict)
    decisions: list[Any] = field(default_factory=list)

    def target(self, job: Job, now: float) -> int | None:
        state: AutoscalerState = read_state(self.status)
        metrics = metrics_from_status(job.status_document(now))
        decision, state = decide(metrics, self.policy, state, job.desired, now)
        self.status = state_fields(state)
        self.decisions.append(decision)
        return decision.target if decision.applied else None


@dataclass
class SparkDynamicAllocation:
    """spark.streaming.dynamicAllocation: scalingInterval 60 s, up 0.9, down 0.3."""

    min_executors: int
    max_executors: int
    name: str = "spark-dynamic-allocation"
    period: float = 60.0
    drains: bool = False
    seen: float = 0.0

    def target(self, job: Job, now: float) -> int | None:
        done = job.ended(self.seen, now)
        self.seen = now
        if not done:
            return None  # no batch completed: Spark's rule waits (the reported hang)
        ratio = sum(b.end - b.start for b in done) / len(done) / job.model.interval
        n = job.desired
        if ratio >= 0.9:
            return min(n + max(round(ratio), 1), self.max_executors)
        if ratio <= 0.3 and n > self.min_executors:
            return n - 1
        return None


@dataclass
class HpaStyle:
    """An HPA on the processing ratio: target 0.7, tolerance 0.1, 300 s scale-down window."""

    min_executors: int
    max_executors: int
    target_ratio: float = 0.7
    name: str = "hpa-style"
    period: float = 15.0
    drains: bool = False
    history: list[tuple[float, int]] = field(default_factory=list)

    def target(self, job: Job, now: float) -> int | None:
        done = job.ended(now - 60, now)
        if not done:
            return None
        ratio = sum(b.end - b.start for b in done) / len(done) / job.model.interval
        n = job.desired
        if abs(ratio / self.target_ratio - 1) <= 0.1:
            want = n
        else:
            want = math.ceil(n * ratio / self.target_ratio)
        want = max(self.min_executors, min(self.max_executors, want))
        self.history = [(t, w) for t, w in self.history if t > now - 300] + [(now, want)]
        if want > n:
            return min(want, n + max(4, n))
        return max(w for _, w in self.history)


@dataclass
class Outcome:
    """One rule on one trace: what a person compares."""

    rule: str
    actions: int
    max_delay: float
    delay_over_interval: float  # seconds of input whose scheduling delay exceeded one interval
    executor_seconds: float
    final_executors: int
    job: Job


def run(
    rule: Rule, model: JobModel, rate: Rate, start: int, seconds: float, seed: int = 7
) -> Outcome:
    job = Job(model, rate, start, seed)
    tick = 5.0
    now = 0.0
    while now < seconds:
        now += tick
        job.advance(now, tick)
        if now % rule.period < 1e-9:
            want = rule.target(job, now)
            if want is not None:
                job.scale(now, want, rule.drains)
    done = job.completed(now)
    delays = [b.start - b.time for b in done]
    return Outcome(
        rule=rule.name,
        actions=len(job.actions),
        max_delay=max(delays, default=0.0),
        delay_over_interval=sum(model.interval for d in delays if d > model.interval),
        executor_seconds=job.executor_seconds,
        final_executors=job.desired,
        job=job,
    )


@dataclass(frozen=True)
class Trace:
    name: str
    rate: Rate
    start: int
    seconds: float
    model: JobModel = JobModel()
    step_at: float | None = None


BASE = 1500.0
HOUR = 3600.0


def _step(at: float, before: float, after: float) -> Rate:
    return lambda t: before if t < at else after


TRACES = (
    Trace("steady", lambda t: BASE, 1, 6 * HOUR),
    Trace("step x2", _step(1800, BASE, 2 * BASE), 3, 2 * HOUR, step_at=1800),
    Trace("step x4", _step(1800, BASE, 4 * BASE), 3, 2 * HOUR, step_at=1800),
    Trace("step down to half", _step(1800, 2 * BASE, BASE), 5, 2 * HOUR, step_at=1800),
    Trace("30 s spike x4", lambda t: 4 * BASE if 1800 <= t < 1830 else BASE, 3, 1 * HOUR),
    Trace(
        "day-shaped sine",
        lambda t: BASE * (1 + 0.6 * math.sin(2 * math.pi * t / (12 * HOUR))),
        3,
        12 * HOUR,
    ),
    Trace(
        "executors cannot help",
        lambda t: BASE,
        1,
        1 * HOUR,
        JobModel(fixed=1.7, per_record=0.00005),
    ),
)

MIN_EXECUTORS, MAX_EXECUTORS = 1, 16


def kubestream_policy() -> Policy:
    """The CRD's defaults, with executors.min 1 and max 16."""
    return Policy(MIN_EXECUTORS, MAX_EXECUTORS)


def rules() -> list[Rule]:
    return [
        Kubestream(kubestream_policy()),
        SparkDynamicAllocation(MIN_EXECUTORS, MAX_EXECUTORS),
        HpaStyle(MIN_EXECUTORS, MAX_EXECUTORS),
    ]


@functools.cache
def compare(trace: Trace) -> list[Outcome]:
    """The three rules on ``trace`` (kubestream's first); computed once per process."""
    return [run(r, trace.model, trace.rate, trace.start, trace.seconds) for r in rules()]


def table() -> str:
    lines = [
        "| trace | rule | actions | max scheduling delay (s) | s with delay > 1 interval "
        "| executor-hours | final executors |",
        "|---|---|---|---|---|---|---|",
    ]
    for trace in TRACES:
        for o in compare(trace):
            lines.append(
                f"| {trace.name} | {o.rule} | {o.actions} | {o.max_delay:.1f} "
                f"| {o.delay_over_interval:.0f} | {o.executor_seconds / HOUR:.2f} "
                f"| {o.final_executors} |"
            )
    return "\n".join(lines)


def plot(trace: Trace, outcomes: list[Outcome], path: Path) -> None:
    """Load, executors and scheduling delay over time, a line per rule, as a PNG.

    Needs matplotlib (``pip install -e '.[plots]'``); imported here so the tests do not.
    """
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    fig, (load, pods, delay) = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    first = outcomes[0].job.samples
    load.plot([t / HOUR for t, _, _ in first], [r for _, r, _ in first], color="black")
    load.set_ylabel("input (records/s)")
    for o in outcomes:
        hours = [t / HOUR for t, _, _ in o.job.samples]
        pods.step(hours, [n for _, _, n in o.job.samples], where="post", label=o.rule)
        done = o.job.completed(trace.seconds)
        delay.plot([b.time / HOUR for b in done], [b.start - b.time for b in done], label=o.rule)
    pods.set_ylabel("executor pods")
    delay.set_ylabel("scheduling delay (s)")
    delay.set_xlabel("hours")
    pods.legend(loc="upper left", fontsize="small")
    load.set_title(f"{trace.name}: kubestream, Spark dynamic allocation, HPA-style")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def picture_name(trace: Trace) -> str:
    return re.sub(r"[^a-z0-9]+", "-", trace.name.lower()).strip("-") + ".png"


if __name__ == "__main__":
    print(table())
    if "--plots" in sys.argv:
        where = REPO_DOC.parent / "autoscaling"
        where.mkdir(exist_ok=True)
        for t in TRACES:
            plot(t, compare(t), where / picture_name(t))
