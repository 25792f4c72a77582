"""The autoscaling decision: metrics, policy, state and time in; a decision out.

One evaluation, as a pure function (no clock, no Kubernetes):

1. The capacity model (``capacity``) takes in the batches completed since the
   last evaluation at a known executor count.
2. Safety first: no data, executors still registering, a drain in progress, or
   too few batches at the current count (warming up) leave the count alone.
3. Scale up, in one step to the count the model says brings the processing
   ratio to ``target_utilization``, when the ratio has stayed above the up
   threshold for the stabilisation window (OVERLOAD), or at once when batches
   are queued and the current count cannot work them off within the catch-up
   time (BACKLOG). It refuses when the fixed per-batch cost alone exceeds the
   target (OVERHEAD_BOUND), or when the executors already outnumber the tasks
   of a batch's first stage (PARALLELISM_BOUND): more executors cannot help.
   Executors beyond those tasks count as idle in the model, so no target exceeds them.
   A job whose records are not counted (a directory input) has each batch taken
   as one unit of work, all of it shared, over the window only: the HPA's
   proportional rule, which cannot tell a fixed cost (no OVERHEAD_BOUND).
4. Scale down, again in one step to the model's count, only when the ratio has
   stayed below the down threshold (or below the target while the model needs
   two or more executors fewer) for the window, nothing is queued and the
   scheduling delay is not rising.
5. Cooldowns (since the last action, either way), the maximum step and
   min/max bound every move; a count set by someone else pins the job.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from enum import StrEnum

from kubestream_operator.autoscaler.capacity import Model
from kubestream_operator.autoscaler.inputs import Batch, Executor, JobMetrics
from kubestream_operator.autoscaler.state import AutoscalerState

# Batches at the current executor count needed before the autoscaler trusts the ratio.
MIN_BATCHES = 2
OVERDUE_INTERVALS = 10
"""A batch still processing after this many batch intervals (and the stabilization
window) is evidence enough to scale up before any batch completes: waiting for
completed batches is how Spark's dynamic allocation hangs on a batch that takes minutes."""
# The "recent" ratio is taken over at least this many seconds (and 3 batches).
RECENT_SECONDS = 10.0
# Scheduling delay growing faster than this (seconds per second) counts as rising.
RISING_TREND = 0.01


class Action(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


class Reason(StrEnum):
    """Why the decision is what it is; programs match on these."""

    OVERLOAD = "OVERLOAD"
    BACKLOG = "BACKLOG"
    OVERDUE = "OVERDUE"
    UNDERLOAD = "UNDERLOAD"
    STEADY = "STEADY"
    STABILIZING = "STABILIZING"
    COOLDOWN = "COOLDOWN"
    WARMING_UP = "WARMING_UP"
    DRAINING = "DRAINING"
    AT_MIN = "AT_MIN"
    AT_MAX = "AT_MAX"
    OVERHEAD_BOUND = "OVERHEAD_BOUND"
    PARALLELISM_BOUND = "PARALLELISM_BOUND"
    NO_DATA = "NO_DATA"


@dataclass(frozen=True)
class Policy:
    """spec.autoscaling with the executor bounds; times in seconds, ratios of the batch interval."""

    min_executors: int
    max_executors: int
    scale_up_threshold: float = 0.8
    scale_down_threshold: float = 0.3
    target_utilization: float = 0.7
    stabilization_window: float = 60.0
    scale_up_cooldown: float = 30.0
    scale_down_cooldown: float = 120.0
    max_step: int = 2
    max_step_percent: float = 100.0
    catch_up_seconds: float = 300.0
    act: bool = True

    def key(self) -> str:
        """Identifies the policy: a change of it releases a pin and restarts held conditions."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]

    def step_limit(self, executors: int) -> int:
        """Most executors one action adds or removes: maxStep or maxStepPercent, the larger."""
        return max(self.max_step, math.ceil(executors * self.max_step_percent / 100 - 1e-9))


@dataclass(frozen=True)
class Inputs:
    """The numbers an evaluation used (rates in records/s, times in s, ratios of the interval)."""

    executors: int
    active_executors: int
    batches: int
    records_per_batch: float | None
    window_records_per_batch: float | None
    input_rate: float | None
    processing_ratio: float | None
    recent_processing_ratio: float | None
    scheduling_delay: float | None
    scheduling_delay_trend: float | None
    pending_batches: int
    fixed_seconds: float | None
    per_record_seconds: float | None
    partitions: int | None = None
    records_counted: bool = True


@dataclass(frozen=True)
class Decision:
    """One evaluation's outcome.

    ``target`` is the executor count wanted (``current`` when the action is none),
    ``applied`` whether the operator changes the count (false in Recommend mode
    or when pinned), ``next_eligible`` the earliest time (operator clock, Unix
    seconds) a scaling action may follow, ``remove`` for a scale-down the
    executors best removed (no receivers, fewest blocks first), ``effect`` the
    last action's (predicted, observed) ratio once it has become known.
    """

    action: Action
    reason: Reason
    message: str
    current: int
    target: int
    predicted_ratio: float | None
    next_eligible: float | None
    inputs: Inputs
    applied: bool = False
    pinned: bool = False
    remove: tuple[str, ...] = ()
    effect: tuple[float, float] | None = None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _busy(m: JobMetrics, executors: int) -> int:
    """Executors that share a batch's records: no more than its first stage has tasks."""
    return executors if m.partitions is None else min(executors, m.partitions)


def _fold_batches(m: JobMetrics, st: AutoscalerState) -> AutoscalerState:
    """Track the active executor count and fold new batches run at it into the capacity."""
    active = m.active_executors
    if st.executors is None:
        # First look at this job: trust the batches listed to have run at this count.
        first = min((b.processing_start for b in m.batches), default=m.time)
        st = replace(st, executors=active, executors_since=first)
    elif st.executors != active or st.executors_since is None:
        st = replace(st, executors=active, executors_since=m.time)
    since = st.executors_since or m.time
    newest = max((b.batch_time for b in m.batches), default=None)
    if newest is None:
        return st
    seen = st.last_batch_time if st.last_batch_time is not None else -math.inf
    fresh = [
        (b.records / _busy(m, active), b.processing_time)
        for b in m.batches
        if b.batch_time > seen and b.processing_start >= since and active > 0
    ]
    counted = fresh and m.records_counted
    capacity = st.capacity.add(m.time, fresh) if counted else st.capacity
    return replace(st, capacity=capacity, last_batch_time=max(newest, seen))


def _batches_as_work(m: JobMetrics) -> JobMetrics:
    """Each batch as one record: a unit of work whose size the processing time tells."""
    return replace(
        m,
        batches=tuple(replace(b, records=1) for b in m.batches),
        arrivals=tuple((t, 1) for t, _ in m.arrivals),
        queued=tuple(1 for _ in m.queued),
    )


def _removals(executors: tuple[Executor, ...], count: int) -> tuple[str, ...]:
    def rank(e: Executor) -> tuple[int, int, int, str]:
        number = -int(e.id) if e.id.isdigit() else 0
        return (e.receivers, e.blocks, number, e.id)

    return tuple(e.id for e in sorted((e for e in executors if not e.draining), key=rank)[:count])


def _fmt(value: float | None, digits: int = 2) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"


@dataclass
class _Eval:
    """Scratchpad of one evaluation."""

    m: JobMetrics
    policy: Policy
    st: AutoscalerState
    replicas: int
    now: float
    window: list[Batch]
    recent: list[Batch]
    model: Model | None
    inputs: Inputs

    def predicted(self, executors: int) -> float | None:
        r = self.inputs.records_per_batch
        if self.model is None or r is None:
            return None
        return self.model.processing_time(r, _busy(self.m, executors)) / self.m.batch_interval


def _arrivals(m: JobMetrics) -> float | None:
    """Records per batch arriving now: the batches of the last RECENT_SECONDS, at least 3."""
    recent = [r for t, r in m.arrivals if t >= m.time - RECENT_SECONDS]
    if len(recent) < 3:
        recent = [r for _, r in m.arrivals[-3:]]
    return _mean([float(r) for r in recent])


def _inputs(
    m: JobMetrics | None,
    replicas: int,
    window: list[Batch],
    recent: list[Batch],
    model: Model | None,
) -> Inputs:
    if m is None:
        return Inputs(replicas, 0, 0, None, None, None, None, None, None, None, 0, None, None)
    interval = m.batch_interval
    per_batch = _arrivals(m)
    window_records = _mean([float(b.records) for b in window])
    ratio = _mean([b.processing_time for b in window])
    recent_ratio = _mean([b.processing_time for b in recent])
    newest = m.batches[-1] if m.batches else None
    return Inputs(
        executors=replicas,
        active_executors=m.active_executors,
        batches=len(window),
        records_per_batch=per_batch,
        window_records_per_batch=window_records,
        input_rate=None if per_batch is None or not m.records_counted else per_batch / interval,
        processing_ratio=None if ratio is None else ratio / interval,
        recent_processing_ratio=None if recent_ratio is None else recent_ratio / interval,
        scheduling_delay=newest.scheduling_delay if newest else None,
        scheduling_delay_trend=m.scheduling_delay_trend,
        pending_batches=m.pending_batches,
        fixed_seconds=model.fixed if model else None,
        per_record_seconds=model.per_record if model else None,
        partitions=m.partitions,
        records_counted=m.records_counted,
    )


def _model(st: AutoscalerState, window: list[Batch], m: JobMetrics) -> Model | None:
    """The fitted model, else (early on) all cost shared by the executors, as DS2 assumes."""
    fitted = st.capacity.model() if m.records_counted else None
    if fitted is not None:
        return fitted
    records = sum(b.records for b in window)
    busy = _busy(m, m.active_executors)
    if not window or records <= 0 or busy <= 0:
        return None
    return Model(0.0, sum(b.processing_time for b in window) * busy / records)


def _hold(e: _Eval, reason: Reason, message: str, nxt: float | None = None) -> Decision:
    return Decision(
        Action.NONE,
        reason,
        message,
        e.replicas,
        e.replicas,
        e.predicted(e.replicas),
        nxt,
        e.inputs,
    )


def _clears(e: _Eval, executors: int) -> bool:
    """Whether ``executors`` work off the queued batches within the catch-up time.

    True when the queued batches' predicted processing plus that of the batches
    arriving meanwhile (at the current arrival rate) fits in ``catch_up_seconds``.
    """
    r = e.inputs.records_per_batch
    assert e.model is not None and r is not None
    horizon = e.policy.catch_up_seconds
    busy = _busy(e.m, executors)
    queued = sum(e.model.processing_time(q, busy) for q in e.m.queued)
    arriving = horizon / e.m.batch_interval * e.model.processing_time(r, busy)
    return queued + arriving <= horizon


def _scale_up(e: _Eval, backlog: bool) -> Decision:
    p, i, interval = e.policy, e.inputs, e.m.batch_interval
    assert e.model is not None and i.records_per_batch is not None
    steady = e.model.executors_for(i.records_per_batch, p.target_utilization * interval)
    model_text = (
        f"model {e.model.fixed:.3f}s per batch + {e.model.per_record * 1000:.4f}ms per record "
        f"per executor at {i.input_rate or 0:.0f} records/s"
        if e.m.records_counted
        else f"records not counted (a directory input): a batch taken as "
        f"{e.model.per_record:.2f} executor-seconds of work, shared by the executors"
    )
    if steady is None:
        return _hold(
            e,
            Reason.OVERHEAD_BOUND,
            f"processing ratio {_fmt(i.recent_processing_ratio)} is above "
            f"{p.scale_up_threshold:.2f}, but the fixed cost of a batch alone "
            f"({e.model.fixed:.2f}s) exceeds the target {p.target_utilization:.2f} of the "
            f"{interval:g}s batch interval ({model_text}): more executors cannot help; "
            f"raise batchIntervalSeconds or make each batch cheaper",
        )
    parts = e.m.partitions
    usable = p.max_executors if parts is None else min(p.max_executors, parts)
    need = steady
    if backlog:
        catch_up = next(
            (k for k in range(e.replicas + 1, usable + 1) if _clears(e, k)),
            usable,
        )
        need = max(need, catch_up)
        why = (
            f"{len(e.m.queued)} batches queued or running and {e.replicas} executors do not "
            f"work them off within catchUpSeconds ({p.catch_up_seconds:g}s)"
        )
    else:
        why = (
            f"processing ratio {_fmt(i.recent_processing_ratio)} above scaleUpThreshold "
            f"{p.scale_up_threshold:.2f} for {p.stabilization_window:g}s"
        )
        now_ratio = e.predicted(e.replicas)
        if need <= e.replicas and now_ratio is not None and now_ratio <= p.scale_up_threshold:
            return _hold(
                e,
                Reason.STEADY,
                f"{why}, but at the current arrival rate ({i.input_rate or 0:.0f} records/s) "
                f"{e.replicas} executors run at ratio {now_ratio:.2f} ({model_text}): the "
                f"slow batches were a burst",
            )
        # Observed overload outweighs a model that thinks the count suffices.
        need = max(need, e.replicas + 1)
    if parts is not None and e.replicas >= parts and parts <= p.max_executors:
        return _hold(
            e,
            Reason.PARALLELISM_BOUND,
            f"{why}; but a batch has {parts} tasks in its first stage (one per input "
            f"partition) and {e.replicas} executors already run them all at once: more "
            f"executors would stay idle; add partitions to the input, or make each record "
            f"cheaper",
        )
    if e.replicas >= p.max_executors:
        return _hold(e, Reason.AT_MAX, f"{why}; already at executors.max ({p.max_executors})")
    target = min(need, usable, e.replicas + p.step_limit(e.replicas))
    cooling = _up_cooldown(e, why, target)
    if cooling is not None:
        return cooling
    capped = ""
    if target < need:
        capped = (
            f" (capped at the {parts} tasks of a batch's first stage)"
            if target == parts
            else " (capped by executors.max or the maximum step)"
        )
    return Decision(
        Action.UP,
        Reason.BACKLOG if backlog else Reason.OVERLOAD,
        f"{why}; {model_text}: {e.replicas} -> {target} executors{capped}, "
        f"predicted ratio {_fmt(e.predicted(target))}",
        e.replicas,
        target,
        e.predicted(target),
        e.now + min(p.scale_up_cooldown, p.scale_down_cooldown),
        e.inputs,
    )


def _up_cooldown(e: _Eval, why: str, target: int) -> Decision | None:
    """A COOLDOWN hold while the last action is more recent than scaleUpCooldownSeconds."""
    p = e.policy
    last = max(e.st.last_scale_up or -math.inf, e.st.last_scale_down or -math.inf)
    ready = last + p.scale_up_cooldown
    if e.now >= ready:
        return None
    return _hold(
        e,
        Reason.COOLDOWN,
        f"{why}; would scale up to {target}, but the last action was "
        f"{e.now - last:.0f}s ago (scaleUpCooldownSeconds {p.scale_up_cooldown:g})",
        ready,
    )


def _overdue(e: _Eval) -> Decision | None:
    """Scale up for a batch that has processed for OVERDUE_INTERVALS intervals (and the
    stabilization window): its processing ratio is at least its time so far over the
    interval, whatever the completed batches (if any) say. None when no batch is overdue."""
    m, p = e.m, e.policy
    if m.running_since is None:
        return None
    running = m.time - m.running_since
    if running < max(OVERDUE_INTERVALS * m.batch_interval, p.stabilization_window):
        return None
    ratio = running / m.batch_interval
    why = (
        f"a batch has processed for {running:.0f}s ({ratio:.0f} batch intervals) and is not "
        f"done: its processing ratio is at least {ratio:.0f}"
    )
    usable = p.max_executors if m.partitions is None else min(p.max_executors, m.partitions)
    if e.replicas >= usable:
        return _hold(e, Reason.AT_MAX, f"{why}; already at the {usable} executors it can use")
    need = max(e.replicas + 1, math.ceil(e.replicas * ratio / p.target_utilization))
    target = min(need, usable, e.replicas + p.step_limit(e.replicas))
    cooling = _up_cooldown(e, why, target)
    if cooling is not None:
        return cooling
    return Decision(
        Action.UP,
        Reason.OVERDUE,
        f"{why}; {e.replicas} -> {target} executors",
        e.replicas,
        target,
        None,
        e.now + min(p.scale_up_cooldown, p.scale_down_cooldown),
        e.inputs,
    )


def _need_down(e: _Eval) -> int | None:
    """Executors for the heavier of the arrivals now and over the window: none on a lull."""
    p, i = e.policy, e.inputs
    if e.model is None or i.records_per_batch is None:
        return None
    load = max(i.records_per_batch, i.window_records_per_batch or 0.0)
    need = e.model.executors_for(load, p.target_utilization * e.m.batch_interval)
    return None if need is None else max(_busy(e.m, need), p.min_executors)


def _scale_down(e: _Eval, surplus: bool) -> Decision:
    p, i = e.policy, e.inputs
    if surplus:
        why = (
            f"processing ratio {_fmt(i.processing_ratio)} below the target "
            f"{p.target_utilization:.2f} for {p.stabilization_window:g}s and the model needs "
            f"{_need_down(e)} of {e.replicas} executors"
        )
    else:
        why = (
            f"processing ratio {_fmt(i.processing_ratio)} below scaleDownThreshold "
            f"{p.scale_down_threshold:.2f} for {p.stabilization_window:g}s"
        )
    if e.replicas <= p.min_executors:
        return _hold(e, Reason.AT_MIN, f"{why}; already at executors.min ({p.min_executors})")
    need = _need_down(e) or e.replicas
    if need >= e.replicas:
        fewer = e.predicted(e.replicas - 1)
        return _hold(
            e,
            Reason.STEADY,
            f"{why}, but {e.replicas - 1} executors would run at ratio {_fmt(fewer)}, above "
            f"the target {p.target_utilization:.2f}",
        )
    target = max(need, e.replicas - p.step_limit(e.replicas))
    last = max(e.st.last_scale_up or -math.inf, e.st.last_scale_down or -math.inf)
    ready = last + p.scale_down_cooldown
    if e.now < ready:
        return _hold(
            e,
            Reason.COOLDOWN,
            f"{why}; would scale down to {target}, but the last action was {e.now - last:.0f}s "
            f"ago (scaleDownCooldownSeconds {p.scale_down_cooldown:g})",
            ready,
        )
    return Decision(
        Action.DOWN,
        Reason.UNDERLOAD,
        f"{why}; {e.replicas} -> {target} executors (drained first), predicted ratio "
        f"{_fmt(e.predicted(target))}",
        e.replicas,
        target,
        e.predicted(target),
        e.now + min(p.scale_up_cooldown, p.scale_down_cooldown),
        e.inputs,
        remove=_removals(e.m.executors, e.replicas - target),
    )


def _evaluate(e: _Eval) -> tuple[Decision, AutoscalerState]:
    p, i, m = e.policy, e.inputs, e.m
    if not m.draining and i.active_executors >= e.replicas:
        overdue = _overdue(e)
        if overdue is not None:
            return overdue, e.st
    if not e.window:
        what = f"{i.pending_batches} batches queued, " if i.pending_batches else ""
        return _hold(e, Reason.NO_DATA, f"{what}no batch completed at the current count yet"), e.st
    if i.active_executors < e.replicas:
        return _hold(
            e,
            Reason.WARMING_UP,
            f"{i.active_executors} of {e.replicas} executors registered with the driver",
        ), e.st
    if m.draining or i.active_executors > e.replicas:
        return _hold(e, Reason.DRAINING, "an executor is being drained"), e.st
    if len(e.window) < MIN_BATCHES:
        return _hold(
            e,
            Reason.WARMING_UP,
            f"{len(e.window)} of {MIN_BATCHES} batches completed since the executor count changed",
        ), e.st
    if e.model is None or i.records_per_batch is None:
        return _hold(
            e, Reason.NO_DATA, "no records yet to estimate what an executor processes"
        ), e.st
    recent = i.recent_processing_ratio or 0.0
    window = i.processing_ratio or 0.0
    over = recent > p.scale_up_threshold
    # Below the down threshold, or more than one executor above what the model needs.
    need = _need_down(e)
    surplus = (
        need is not None and need <= e.replicas - 2 and max(window, recent) < p.target_utilization
    )
    under = max(window, recent) < p.scale_down_threshold or surplus
    st = replace(
        e.st,
        over_since=(e.st.over_since if e.st.over_since is not None else e.now) if over else None,
        under_since=(e.st.under_since if e.st.under_since is not None else e.now)
        if under
        else None,
    )
    e.st = st
    queued = i.pending_batches
    backlog = queued > 0 and not _clears(e, e.replicas)
    held_over = e.now - st.over_since if st.over_since is not None else -1.0
    if backlog or (over and held_over >= p.stabilization_window):
        return _scale_up(e, backlog), st
    if over:
        held = e.now - (st.over_since or e.now)
        return _hold(
            e,
            Reason.STABILIZING,
            f"processing ratio {_fmt(recent)} above scaleUpThreshold {p.scale_up_threshold:.2f} "
            f"for {held:.0f}s of the {p.stabilization_window:g}s window",
        ), st
    if under:
        if queued > 0 or (i.scheduling_delay_trend or 0.0) > RISING_TREND:
            return _hold(
                e,
                Reason.STEADY,
                f"processing ratio {_fmt(window)} is low, but {queued} batches are queued or the "
                f"scheduling delay rises ({_fmt(i.scheduling_delay_trend, 4)}s/s): no scale-down",
            ), st
        held = e.now - (st.under_since or e.now)
        if held < p.stabilization_window:
            return _hold(
                e,
                Reason.STABILIZING,
                f"processing ratio {_fmt(window)} low enough to scale down (below "
                f"scaleDownThreshold {p.scale_down_threshold:.2f}, or below the target with "
                f"{need} of {e.replicas} executors needed) for {held:.0f}s of the "
                f"{p.stabilization_window:g}s window",
            ), st
        return _scale_down(e, surplus and max(window, recent) >= p.scale_down_threshold), st
    return _hold(
        e,
        Reason.STEADY,
        f"processing ratio {_fmt(window)} (recent {_fmt(recent)}) within "
        f"{p.scale_down_threshold:.2f}..{p.scale_up_threshold:.2f} on {e.replicas} executors",
    ), st


def decide(
    metrics: JobMetrics | None,
    policy: Policy,
    state: AutoscalerState,
    replicas: int,
    now: float,
) -> tuple[Decision, AutoscalerState]:
    """Evaluate once: the decision and the state to keep for the next evaluation.

    ``replicas`` is the executor count the job asks for now (spec.executors.replicas),
    ``now`` the operator's clock (Unix seconds); batch times are on the driver's
    clock (``metrics.time``). ``metrics`` None means the driver gave no usable
    status: the decision is NO_DATA.
    """
    st = state
    key = policy.key()
    if st.policy != key:
        # A new policy adopts the current count and releases a pin; cooldowns carry on.
        st = replace(st, policy=key, owned_replicas=replicas, pinned=False, recommended=None)
        st = replace(st, over_since=None, under_since=None)
    if st.owned_replicas is None:
        st = replace(st, owned_replicas=replicas)
    if not st.pinned and replicas != st.owned_replicas:
        st = replace(st, pinned=True)
    window: list[Batch] = []
    recent: list[Batch] = []
    model = None
    if metrics is not None:
        if not metrics.records_counted:
            metrics = _batches_as_work(metrics)
        st = _fold_batches(metrics, st)
        since = st.executors_since if st.executors_since is not None else metrics.time
        start = metrics.time - policy.stabilization_window - metrics.batch_interval
        completed = [b for b in metrics.batches if b.processing_start >= since]
        window = [b for b in completed if b.processing_start + b.processing_time >= start]
        if len(window) < MIN_BATCHES:
            # Batches longer than the window: the newest completed ones, or it never fills.
            window = completed[-MIN_BATCHES:]
        count = max(3, math.ceil(RECENT_SECONDS / metrics.batch_interval))
        recent = window[-count:]
        model = _model(st, window, metrics)
    inputs = _inputs(metrics, replicas, window, recent, model)
    if metrics is None:
        e = None
        decision = Decision(
            Action.NONE,
            Reason.NO_DATA,
            "the driver's status document is not available",
            replicas,
            replicas,
            None,
            None,
            inputs,
        )
    else:
        e = _Eval(metrics, policy, st, replicas, now, window, recent, model, inputs)
        decision, st = _evaluate(e)
    return _finish(decision, policy, st, now)


def _finish(
    decision: Decision, policy: Policy, st: AutoscalerState, now: float
) -> tuple[Decision, AutoscalerState]:
    """Effects of the last action, pinning and Recommend mode, and the state after acting."""
    effect = None
    warm = decision.reason not in (Reason.NO_DATA, Reason.WARMING_UP, Reason.DRAINING)
    observed = decision.inputs.processing_ratio
    if st.awaiting_effect is not None and warm and observed is not None:
        effect = (st.awaiting_effect, observed)
        st = replace(st, awaiting_effect=None)
    decision = replace(decision, effect=effect, pinned=st.pinned)
    if decision.action is Action.NONE:
        return decision, st
    if st.pinned or not policy.act:
        why = (
            f"pinned at {decision.current}: spec.executors.replicas was set by someone else "
            f"(kubectl scale, an HPA); change spec.autoscaling to release it"
            if st.pinned
            else "mode Recommend"
        )
        return replace(decision, message=f"{decision.message} [not applied: {why}]"), replace(
            st, recommended=decision.target
        )
    up = decision.action is Action.UP
    st = replace(
        st,
        owned_replicas=decision.target,
        last_scale_up=now if up else st.last_scale_up,
        last_scale_down=st.last_scale_down if up else now,
        over_since=None,
        under_since=None,
        recommended=None,
        awaiting_effect=decision.predicted_ratio,
    )
    return replace(decision, applied=True), st
