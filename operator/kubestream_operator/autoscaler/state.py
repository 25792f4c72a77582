"""The autoscaler's memory, kept in ``status.autoscaler.state`` of the job.

Cooldowns, the conditions being held, the capacity estimate and whether a
count is pinned all live in the job's status, so an operator restart or a
failover to another replica resumes exactly where the last one stopped.
Times are Unix seconds; those compared with batch times (``executors_since``,
``last_batch_time``, the capacity's ``updated``) are on the driver's clock,
the others on the operator's.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubestream_operator.autoscaler.capacity import Capacity


@dataclass(frozen=True)
class AutoscalerState:
    """What the next evaluation needs to know about the earlier ones."""

    # Key of the policy (spec.autoscaling, min, max) this state was built under.
    policy: str = ""
    # The executor count the autoscaler last set or adopted; any other was set by someone else.
    owned_replicas: int | None = None
    pinned: bool = False
    last_scale_up: float | None = None
    last_scale_down: float | None = None
    # Since when the ratio has stayed above the up threshold / below the down threshold.
    over_since: float | None = None
    under_since: float | None = None
    # Active executors last seen, and since when (driver clock).
    executors: int | None = None
    executors_since: float | None = None
    # Newest batch folded into the capacity estimate (driver clock).
    last_batch_time: float | None = None
    capacity: Capacity = field(default_factory=Capacity)
    # The last target recommended, so an unchanged recommendation is not announced again.
    recommended: int | None = None
    # The predicted ratio of the last action until its effect has been observed.
    awaiting_effect: float | None = None


_FLOATS = {
    "lastScaleUp": "last_scale_up",
    "lastScaleDown": "last_scale_down",
    "overSince": "over_since",
    "underSince": "under_since",
    "executorsSince": "executors_since",
    "lastBatchTime": "last_batch_time",
    "awaitingEffect": "awaiting_effect",
}
_INTS = {"ownedReplicas": "owned_replicas", "executors": "executors", "recommended": "recommended"}
_CAPACITY = {
    "updated": "updated",
    "weight": "weight",
    "sumX": "sum_x",
    "sumY": "sum_y",
    "sumXX": "sum_xx",
    "sumXY": "sum_xy",
}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def read_state(raw: Any) -> AutoscalerState:
    """The state from ``status.autoscaler.state``; anything missing or malformed starts afresh."""
    if not isinstance(raw, Mapping):
        return AutoscalerState()
    values: dict[str, Any] = {}
    for key, attr in _FLOATS.items():
        values[attr] = _num(raw.get(key))
    for key, attr in _INTS.items():
        n = _num(raw.get(key))
        values[attr] = int(n) if n is not None else None
    cap = raw.get("capacity")
    sums: dict[str, Any] = {}
    if isinstance(cap, Mapping):
        for key, attr in _CAPACITY.items():
            n = _num(cap.get(key))
            if n is not None:
                sums[attr] = n
    return AutoscalerState(
        policy=str(raw.get("policy") or ""),
        pinned=raw.get("pinned") is True,
        capacity=Capacity(**sums),
        **values,
    )


def state_fields(state: AutoscalerState) -> dict[str, Any]:
    """``status.autoscaler.state`` for ``state``; None values clear fields in a merge patch."""
    fields: dict[str, Any] = {"policy": state.policy, "pinned": state.pinned}
    for key, attr in {**_FLOATS, **_INTS}.items():
        fields[key] = getattr(state, attr)
    fields["capacity"] = {key: getattr(state.capacity, attr) for key, attr in _CAPACITY.items()}
    return fields
