"""The autoscaler's adapter: from a job and its driver's status to what to change and record.

``evaluate`` is pure: it reads the policy from the spec, the autoscaler's state
from ``status.autoscaler`` and the count it last set from the job's
``kubestream.io/autoscaler-replicas`` annotation, runs ``decide``, and returns
the new executor count (if any), the ``status.autoscaler`` fields and the
Events to post. The reconciler makes the API calls: the count and the
annotations change in one patch, conditional on the job's resourceVersion, so a
``kubectl scale`` in between is never overwritten and is recognised as
someone else's count (a pin) on the next pass. With the count goes
``kubestream.io/removed-executors``, the executor ids the count skips, so that
the planner drains exactly the executors the decision chose to remove.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubestream_operator.autoscaler import (
    Action,
    Decision,
    Policy,
    Reason,
    decide,
    metrics_from_status,
    read_state,
)
from kubestream_operator.autoscaler.state import state_fields
from kubestream_operator.plan import (
    REMOVED_EXECUTORS_ANNOTATION,
    Note,
    executor_ids,
    gaps,
    iso,
    parse_executor_ids,
)
from kubestream_operator.spec import JobSpec

# The executor count the autoscaler last set or adopted, written with the count itself.
REPLICAS_ANNOTATION = "kubestream.io/autoscaler-replicas"
# Reasons worth an Event the first time they appear: the autoscaler wants to and cannot.
_STUCK = {
    Reason.OVERHEAD_BOUND: "more executors cannot help",
    Reason.AT_MAX: "executors.max is reached",
    Reason.PARALLELISM_BOUND: "the job cannot use more executors",
}


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation changes: ``scale_to`` with ``owned`` for the annotation
    (``scale_to`` None with ``owned`` set only records an adopted count), the
    ``status.autoscaler`` fields, and Events. ``annotations`` are what the patch
    sets (a None value removes one)."""

    decision: Decision
    scale_to: int | None
    owned: int | None
    status: dict[str, Any]
    events: tuple[Note, ...]
    annotations: dict[str, str | None]


def removed_after(d: Decision, removed: frozenset[int]) -> frozenset[int]:
    """The executor ids to skip once the count is ``d.target`` (was ``d.current``, skipping
    ``removed``): a scale-down leaves out the executors the decision chose (then the
    highest-numbered, if it named too few it runs), a scale-up fills gaps first."""
    ids = executor_ids(d.current, removed)
    if d.target >= d.current:
        return gaps(ids + executor_ids(d.target - d.current, ids))
    count = d.current - d.target
    named = [int(x) for x in d.remove if x.isascii() and x.isdigit()]
    chosen = [i for i in dict.fromkeys(named) if i in ids][:count]
    chosen += [i for i in reversed(ids) if i not in chosen][: count - len(chosen)]
    return gaps(i for i in ids if i not in chosen)


def policy_of(spec: JobSpec) -> Policy:
    a = spec.autoscaling
    return Policy(
        min_executors=spec.min_executors,
        max_executors=spec.max_executors,
        scale_up_threshold=a.scale_up_threshold,
        scale_down_threshold=a.scale_down_threshold,
        target_utilization=a.target_utilization,
        stabilization_window=float(a.stabilization_window_seconds),
        scale_up_cooldown=float(a.scale_up_cooldown_seconds),
        scale_down_cooldown=float(a.scale_down_cooldown_seconds),
        max_step=a.max_step,
        max_step_percent=float(a.max_step_percent),
        catch_up_seconds=float(a.catch_up_seconds),
        act=a.mode == "Act",
    )


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _evaluation_fields(d: Decision, now: float) -> dict[str, Any]:
    i = d.inputs
    return {
        "time": iso(now),
        "action": d.action.value,
        "reason": d.reason.value,
        "message": d.message,
        "applied": d.applied,
        "currentExecutors": d.current,
        "targetExecutors": d.target,
        "predictedRatio": _round(d.predicted_ratio),
        "nextEligibleTime": iso(d.next_eligible) if d.next_eligible is not None else None,
        "removeExecutors": list(d.remove) or None,
        "inputs": {
            "executors": i.executors,
            "activeExecutors": i.active_executors,
            "batches": i.batches,
            "inputRate": _round(i.input_rate, 1),
            "recordsPerBatch": _round(i.records_per_batch, 1),
            "processingRatio": _round(i.processing_ratio),
            "recentProcessingRatio": _round(i.recent_processing_ratio),
            "schedulingDelaySeconds": _round(i.scheduling_delay),
            "schedulingDelayTrend": _round(i.scheduling_delay_trend, 5),
            "pendingBatches": i.pending_batches,
            "fixedCostSeconds": _round(i.fixed_seconds, 4),
            "perRecordExecutorSeconds": _round(i.per_record_seconds, 9),
            "recordsCounted": i.records_counted,
            "partitions": i.partitions,
        },
    }


def _events(d: Decision, recommended: int | None, last_reason: Any, was_pinned: bool) -> list[Note]:
    """Events for an action, a changed recommendation, a new pin, a new limit."""
    events = []
    numbers = f"{d.current} -> {d.target} executors ({d.reason.value}): {d.message}"
    if d.pinned and not was_pinned:
        events.append(
            Note(
                "Warning",
                "AutoscalerPinned",
                f"spec.executors.replicas was set to {d.current} by someone else (kubectl "
                f"scale, an HPA): the autoscaler keeps that count and only recommends until "
                f"spec.autoscaling changes",
            )
        )
    if d.applied:
        reason = "AutoscaledUp" if d.action is Action.UP else "AutoscaledDown"
        events.append(Note("Normal", reason, numbers))
    elif d.action is not Action.NONE and d.target != recommended:
        events.append(Note("Normal", "AutoscalerRecommendation", numbers))
    if d.reason in _STUCK and last_reason != d.reason.value:
        what = _STUCK[d.reason]
        events.append(Note("Warning", "AutoscalerLimited", f"{what}: {d.message}"))
    return events


def evaluate(
    job: Mapping[str, Any], spec: JobSpec, doc: Mapping[str, Any], now: float
) -> Evaluation:
    """One autoscaler evaluation of ``job`` (a raw StreamingJob) given its driver's document."""
    status = job.get("status") or {}
    previous = status.get("autoscaler") or {}
    if not isinstance(previous, Mapping):
        previous = {}
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    written = str(annotations.get(REPLICAS_ANNOTATION) or "")
    state = read_state(previous.get("state"))
    state = replace(state, owned_replicas=int(written) if written.isdigit() else None)
    decision, after = decide(metrics_from_status(doc), policy_of(spec), state, spec.replicas, now)
    fields: dict[str, Any] = {
        "mode": spec.autoscaling.mode,
        "pinned": decision.pinned,
        "lastEvaluation": _evaluation_fields(decision, now),
        "state": state_fields(after),
    }
    if decision.action is not Action.NONE and (
        decision.applied or decision.target != state.recommended
    ):
        fields["lastAction"] = {
            "time": iso(now),
            "action": decision.action.value,
            "reason": decision.reason.value,
            "applied": decision.applied,
            "from": decision.current,
            "to": decision.target,
            "predictedRatio": _round(decision.predicted_ratio),
            "removeExecutors": list(decision.remove) or None,
            "observedRatio": None,
            "observedTime": None,
        }
    elif decision.effect is not None:
        fields["lastAction"] = {
            "observedRatio": _round(decision.effect[1]),
            "observedTime": iso(now),
        }
    scale_to = decision.target if decision.applied else None
    owned = after.owned_replicas if str(after.owned_replicas) != written else None
    patch: dict[str, str | None] = {}
    if owned is not None:
        patch[REPLICAS_ANNOTATION] = str(owned)
    if decision.applied:
        removed = parse_executor_ids(annotations.get(REMOVED_EXECUTORS_ANNOTATION))
        skip = removed_after(decision, removed)
        patch[REMOVED_EXECUTORS_ANNOTATION] = ",".join(map(str, sorted(skip))) or None
    last = previous.get("lastEvaluation")
    events = _events(
        decision,
        state.recommended,
        last.get("reason") if isinstance(last, Mapping) else None,
        previous.get("pinned") is True,
    )
    return Evaluation(decision, scale_to, owned, fields, tuple(events), patch)
