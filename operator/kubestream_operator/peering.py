"""The kopf peering priority of one operator replica, chosen by ``cli``.

kopf pauses every replica that sees a live peer of its own priority, and the
replicas of a Deployment share one pod template, so nothing in it can hand each
a different number. Each replica therefore derives its priority from its pod
name, which is unique, unless one is given. Pure, so it is tested without a
cluster.
"""

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class PeeringPriority:
    value: int
    reason: str
    # True when every replica started the same way gets this value: a warning.
    shared: bool = False


def derived_priority(pod_name: str) -> int:
    """A priority in [-2**32, -1], the same for the same pod name in every process.

    2**32 values, so two replicas collide with probability 2**-32. Negative, so
    any priority given by hand (0 or more: a developer's operator started with
    ``--priority``, or ``kopf freeze``, which takes 100) outranks the derived
    ones and pauses the cluster's replicas, as kopf intends.
    """
    digest = hashlib.sha256(pod_name.encode()).digest()
    return -1 - int.from_bytes(digest[:4], "big")


def choose_priority(given: int | None, pod_name: str) -> PeeringPriority:
    """The given priority if any, else one derived from the pod name, else 0."""
    if given is not None:
        return PeeringPriority(given, "given by --priority or KUBESTREAM_OPERATOR_PRIORITY")
    if pod_name:
        return PeeringPriority(derived_priority(pod_name), f"derived from pod name {pod_name!r}")
    return PeeringPriority(
        0,
        "no priority and no pod name given; replicas started like this all get 0 "
        "and kopf pauses them all",
        shared=True,
    )
