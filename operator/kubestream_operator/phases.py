"""The job lifecycle as an explicit state machine, and its status conditions.

Every phase says what it means and whether it is terminal; the planner moves
between them and posts an Event for each move. Conditions follow the Kubernetes
convention (type, status, reason, message, lastTransitionTime) and keep their
transition time while their status does not change.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Phase(Enum):
    """Where a job is in its life. ``value`` is what status.phase shows."""

    description: str
    terminal: bool

    def __new__(cls, value: str, description: str, terminal: bool) -> "Phase":
        member = object.__new__(cls)
        member._value_ = value
        member.description = description
        member.terminal = terminal
        return member

    PENDING = ("Pending", "creating the job's objects; the driver is not started yet", False)
    STARTING = ("Starting", "the driver pod exists and is not running yet", False)
    RUNNING = ("Running", "the driver is running and processing batches", False)
    RESTARTING = ("Restarting", "the spec changed; the driver restarts from the checkpoint", False)
    RECOVERING = ("Recovering", "the driver failed; it is recreated after a backoff", False)
    SUSPENDING = ("Suspending", "spec.suspend is true; the pods are stopping gracefully", False)
    SUSPENDED = ("Suspended", "spec.suspend is true; no pods run, the checkpoint is kept", False)
    SUCCEEDED = ("Succeeded", "the driver exited cleanly and the restart policy ends the job", True)
    FAILED = ("Failed", "the job stopped: see the Degraded condition", True)
    DELETING = ("Deleting", "the job is being deleted; the pods stop gracefully", False)


def phase_named(value: object) -> Phase | None:
    """The phase whose status.phase text is ``value``, or None."""
    return next((p for p in Phase if p.value == value), None)


@dataclass(frozen=True)
class Condition:
    """One status condition as the planner wants it."""

    type: str
    status: bool
    reason: str
    message: str


def merge_conditions(
    old: Sequence[Mapping[str, Any]], new: Sequence[Condition], now: str, generation: int
) -> list[dict[str, Any]]:
    """Status conditions for ``new``, keeping lastTransitionTime of unchanged ones."""
    previous = {c.get("type"): c for c in old}
    merged = []
    for cond in new:
        status = "True" if cond.status else "False"
        before = previous.get(cond.type)
        since = now
        if before is not None and before.get("status") == status:
            since = str(before.get("lastTransitionTime") or now)
        merged.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since,
                "observedGeneration": generation,
            }
        )
    return merged
