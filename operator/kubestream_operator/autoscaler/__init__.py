"""The autoscaler: sizes a job's executors from its batch metrics.

Nothing in this package talks to Kubernetes or reads a clock (import-linter
enforces the first): ``metrics_from_status`` turns the driver's status document
into ``JobMetrics``, ``decide`` turns metrics, the policy and the state kept in
the job's status into a ``Decision`` and the next state, and ``read_state`` and
``state_fields`` carry that state through the job's status.
``kubestream_operator.autoscale`` turns decisions into status fields, Events and
scale requests; the simulation tests run other rules on the same traces.
"""

from kubestream_operator.autoscaler.decision import Action, Decision, Policy, Reason, decide
from kubestream_operator.autoscaler.inputs import Batch, Executor, JobMetrics, metrics_from_status
from kubestream_operator.autoscaler.state import AutoscalerState, read_state

__all__ = [
    "Action",
    "AutoscalerState",
    "Batch",
    "Decision",
    "Executor",
    "JobMetrics",
    "Policy",
    "Reason",
    "decide",
    "metrics_from_status",
    "read_state",
]
