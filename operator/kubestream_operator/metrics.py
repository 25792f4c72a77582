"""The operator's own Prometheus metrics, created against an injected registry."""

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubestream_operator.phases import Phase


class OperatorMetrics:
    """Jobs by phase, reconciles, reconcile errors, driver restarts, autoscaler decisions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "kubestream_operator_jobs",
            "StreamingJobs handled by this operator, by phase.",
            ["phase"],
            registry=registry,
        )
        self.reconciles = Counter(
            "kubestream_operator_reconciles", "Reconcile passes run.", registry=registry
        )
        self.errors = Counter(
            "kubestream_operator_reconcile_errors",
            "Reconcile passes that failed.",
            ["reason"],
            registry=registry,
        )
        self.driver_restarts = Counter(
            "kubestream_operator_driver_restarts",
            "Driver failures that led to a restart or to a Failed job.",
            registry=registry,
        )
        self.autoscaler_decisions = Counter(
            "kubestream_operator_autoscaler_decisions",
            "Autoscaler evaluations, by action (up, down, none) and reason.",
            ["action", "reason"],
            registry=registry,
        )
        self._phases: dict[tuple[str, str], str] = {}
        for phase in Phase:
            self.jobs.labels(phase.value).set(0)

    def set_phase(self, namespace: str, name: str, phase: str | None) -> None:
        """Record a job's phase (None when the job is gone) and refresh the gauge."""
        key = (namespace, name)
        if phase is None:
            self._phases.pop(key, None)
        else:
            self._phases[key] = phase
        for p in Phase:
            self.jobs.labels(p.value).set(sum(1 for v in self._phases.values() if v == p.value))
