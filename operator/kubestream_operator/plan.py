"""Every reconcile decision, as pure functions of what was observed.

``plan`` looks at one StreamingJob and its children as they are now and returns
what to create, update and delete, the status to record and the Events to post.
``plan_stop`` does the same for a job being deleted. Nothing here talks to the
cluster or reads a clock, so the whole lifecycle is unit-tested without one, and
running a plan twice, or after a crash halfway, converges to the same objects.
"""

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubestream_operator import manifests as m
from kubestream_operator.backoff import restart_delay
from kubestream_operator.certificates import Validity, renewal_due
from kubestream_operator.phases import Condition, Phase, merge_conditions, phase_named
from kubestream_operator.spec import JobSpec, SpecError

# A driver that has run this long without failing has its failure count reset.
STABLE_RUN_SECONDS = 600

SECRET = "Secret"
SERVICE_ACCOUNT = "ServiceAccount"
CONFIG_MAP = "ConfigMap"
SERVICE = "Service"
CLAIM = "PersistentVolumeClaim"
NETWORK_POLICY = "NetworkPolicy"
# Executor ids the count skips (comma-separated), written by the autoscaler in the same
# patch as the count, so that a scale-down removes the executors it chose.
REMOVED_EXECUTORS_ANNOTATION = "kubestream.io/removed-executors"


@dataclass(frozen=True)
class PodState:
    """What the planner needs to know about one pod of the job."""

    name: str
    uid: str
    phase: str
    ready: bool
    spec_hash: str
    deleting: bool
    executor_id: int | None = None
    message: str = ""
    ip: str = ""
    keys_id: str = ""


@dataclass(frozen=True)
class DriverReport:
    """What the running driver's status document says: its executors by id, the outcome
    of each drain, and the problems it reports as (reason, message) for the Degraded
    condition (a stalled batch, checkpoints that cannot be written)."""

    registered: frozenset[str] = frozenset()
    decommissions: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class JobStatus:
    """What the operator recorded in status.* last time."""

    phase: Phase | None = None
    observed_generation: int = 0
    driver_restarts: int = 0
    failed_driver_uid: str = ""
    next_driver_start: float | None = None
    running_since: float | None = None
    last_failure: str = ""
    conditions: tuple[Mapping[str, Any], ...] = ()
    # Executor pods being drained, by name: when it began, so the bound survives restarts.
    draining_since: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Observed:
    """One job and its children as read from the cluster at time ``now``."""

    job: m.JobRef
    generation: int
    spec: JobSpec | SpecError
    status: JobStatus
    now: float
    children: frozenset[str] = frozenset()
    config_data: Mapping[str, str] | None = None
    claim_owned: bool | None = None
    missing_secrets: tuple[str, ...] = ()
    keys_id: str = ""
    # Namespaces whose pods may reach the UI port (the operator's, a monitoring one).
    ui_namespaces: tuple[str, ...] = ()
    network_policy_spec: Mapping[str, Any] | None = None
    # The validity of the UI certificate in the job's Secret (None: none there, or unreadable).
    ui_certificate: Validity | None = None
    # The scrape token in the job's Secret is not the operator's (rotated, or given up).
    scrape_token_stale: bool = False
    # The StreamingJob's ROTATE_UI_TOKENS_ANNOTATION, and the value its Secret records
    # the last rotation for: a difference asks for a rotation.
    rotate_ui_tokens: str = ""
    ui_tokens_rotated_for: str = ""
    # The token generation in the job's Secret (None: not a non-negative integer), and
    # whether the Secret's ui-read-token is not the one it gives.
    ui_token_generation: int | None = 0
    read_token_stale: bool = False
    driver: PodState | None = None
    executors: tuple[PodState, ...] = ()
    # None when the driver is not running or did not answer.
    driver_report: DriverReport | None = None
    # Why the job's name cannot name its children; empty when it can.
    name_problem: str = ""
    # Executor ids spec.executors.replicas skips (REMOVED_EXECUTORS_ANNOTATION).
    removed_executors: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Deletion:
    """Delete pod ``name`` (only if its uid is still ``uid``), giving it ``grace`` seconds."""

    name: str
    uid: str
    grace: int


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event to post on the job."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class TokenRotation:
    """Write token ``generation`` and its read token into the job's Secret, recording
    the rotation request ``rotated_for`` carried out ("" for none)."""

    generation: int
    rotated_for: str


@dataclass(frozen=True)
class Plan:
    """What one reconcile does, in order: keys, creates, updates, deletes, drains, status, events.

    ``drain`` lists executor ids the driver is asked to decommission (by the reconciler,
    over its HTTP API) before their pods are deleted.
    """

    create_keys: bool = False
    # Make the UI port's certificate: in the key Secret being created, or replacing the one
    # in it (kubestream_operator.certificates).
    issue_certificate: bool = False
    # Put the operator's scrape token into the job's Secret (remove it if it has none):
    # the pods read it from a file the kubelet updates, so no restart.
    update_scrape_token: bool = False
    # New read and change tokens (pods read the generation from a file the kubelet
    # updates: no restart), or the Secret's ui-read-token brought in step; with
    # create_keys, what the key Secret being created starts with.
    ui_tokens: TokenRotation | None = None
    create: tuple[m.Manifest, ...] = ()
    update_config: m.Manifest | None = None
    # The job's NetworkPolicy as it should be, when the one found differs (made by an
    # older operator, or with other UI namespaces).
    update_network_policy: m.Manifest | None = None
    set_claim_owned: tuple[str, bool] | None = None
    delete: tuple[Deletion, ...] = ()
    drain: tuple[str, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)
    events: tuple[Note, ...] = ()


def executor_ids(replicas: int, removed: Iterable[int] = ()) -> tuple[int, ...]:
    """The ids of a job's ``replicas`` executors: the lowest ids not in ``removed``."""
    skip = frozenset(removed)
    return tuple(itertools.islice((i for i in itertools.count() if i not in skip), replicas))


def gaps(ids: Iterable[int]) -> frozenset[int]:
    """The ids below the highest of ``ids`` that are not among them: what
    REMOVED_EXECUTORS_ANNOTATION holds for the job to run exactly ``ids``."""
    have = frozenset(ids)
    return frozenset(range(max(have, default=0))) - have


def parse_executor_ids(value: Any) -> frozenset[int]:
    """Executor ids from a comma-separated annotation value; what is not an id is ignored."""
    if not isinstance(value, str):
        return frozenset()
    parts = (p.strip() for p in value.split(","))
    return frozenset(int(p) for p in parts if p.isascii() and p.isdigit() and len(p) <= 6)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch from an RFC 3339 status field, None if absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _draining_since(value: Any) -> dict[str, float]:
    found: dict[str, float] = {}
    for entry in value if isinstance(value, list) else []:
        since = parse_time(entry.get("since")) if isinstance(entry, Mapping) else None
        if since is not None:
            found[str(entry.get("pod"))] = since
    return found


def read_status(status: Mapping[str, Any]) -> JobStatus:
    """The planner's view of a job's status; unknown or missing fields get defaults."""
    phase = phase_named(status.get("phase"))
    conditions = status.get("conditions")
    return JobStatus(
        phase=phase,
        observed_generation=int(status.get("observedGeneration") or 0),
        driver_restarts=int(status.get("driverRestarts") or 0),
        failed_driver_uid=str(status.get("failedDriverUid") or ""),
        next_driver_start=parse_time(status.get("nextDriverStart")),
        running_since=parse_time(status.get("runningSince")),
        last_failure=str(status.get("lastDriverFailure") or ""),
        conditions=tuple(conditions) if isinstance(conditions, list) else (),
        draining_since=_draining_since(status.get("drainingExecutors")),
    )


class _Draft:
    """Mutable scratchpad of one planning pass; frozen into a Plan at the end."""

    def __init__(self, obs: Observed, spec: JobSpec) -> None:
        self.obs = obs
        self.spec = spec
        st = obs.status
        self.phase = st.phase or Phase.PENDING
        self.detail = ""
        self.restarts = st.driver_restarts
        self.failed_uid = st.failed_driver_uid
        self.next_start = st.next_driver_start
        self.running_since = st.running_since
        self.last_failure = st.last_failure
        self.problems: list[tuple[str, str]] = []
        self.create: list[m.Manifest] = []
        self.delete: list[Deletion] = []
        self.drain: list[str] = []
        self.update_network_policy: m.Manifest | None = None
        self.draining: dict[str, float] = {}
        self.events: list[Note] = []

    def note(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Note("Warning" if warning else "Normal", reason, message))

    def stop(self, pod: PodState, grace: int) -> None:
        if not pod.deleting:
            self.delete.append(Deletion(pod.name, pod.uid, grace))


def _ensure_children(d: _Draft) -> tuple[bool, m.Manifest | None, tuple[str, bool] | None]:
    obs, spec, job = d.obs, d.spec, d.obs.job
    have = obs.children
    if SERVICE_ACCOUNT not in have:
        d.create.append(m.build_service_account(job))
    create_keys = SECRET not in have
    config = m.build_config_map(job, spec)
    update_config = None
    if CONFIG_MAP not in have:
        d.create.append(config)
    elif dict(obs.config_data or {}) != config["data"]:
        update_config = config
    if SERVICE not in have:
        d.create.append(m.build_service(job))
    policy = m.build_network_policy(job, obs.ui_namespaces)
    if NETWORK_POLICY not in have:
        d.create.append(policy)
    elif obs.network_policy_spec is not None and obs.network_policy_spec != policy["spec"]:
        d.update_network_policy = policy
    set_owned = None
    if spec.checkpoint.existing_claim:
        if CLAIM not in have:
            d.problems.append(
                (
                    "ClaimNotFound",
                    f"spec.checkpoint.existingClaim: PersistentVolumeClaim "
                    f"{spec.checkpoint.existing_claim!r} does not exist in namespace "
                    f"{job.namespace!r}; create it or remove the field",
                )
            )
    elif CLAIM not in have:
        d.create.append(m.build_claim(job, spec))
    elif obs.claim_owned is not None and obs.claim_owned != m.claim_owned(spec):
        set_owned = (m.claim_name(job, spec), m.claim_owned(spec))
    if obs.missing_secrets:
        names = ", ".join(repr(n) for n in obs.missing_secrets)
        d.problems.append(
            (
                "SecretNotFound",
                f"spec.secretRefs/secretMounts: Secret {names} not found in namespace "
                f"{job.namespace!r} (or lacks the key); create it, and the job starts",
            )
        )
    return create_keys, update_config, set_owned


def _issue_certificate(d: _Draft, create_keys: bool) -> bool:
    """Whether the job needs a (new) certificate from the operator for its UI port."""
    obs = d.obs
    if not d.spec.ui.operator_tls:
        return False
    if create_keys:
        return True
    if not renewal_due(obs.ui_certificate, obs.now):
        return False
    secret = m.secret_name(obs.job)
    if obs.ui_certificate is None:
        d.note("CertificateIssued", f"made the UI port's certificate, in Secret {secret}")
    else:
        expiry = iso(obs.ui_certificate.not_after)
        d.note("CertificateRenewed", f"the UI port's certificate expires {expiry}: made a new one")
    return True


def _driver_failed(d: _Draft, reason: str, message: str) -> None:
    policy = d.spec.restart
    d.last_failure = message
    d.restarts += 1
    d.running_since = None
    if policy.type == "Never" or d.restarts > policy.limit:
        d.phase = Phase.FAILED
        d.next_start = None
        why = (
            "restartPolicy.type is Never"
            if policy.type == "Never"
            else f"it failed {d.restarts} times in a row (restartPolicy.limit is {policy.limit})"
        )
        d.detail = (
            f"{message}; the driver is not restarted because {why}. Fix the cause, then change "
            f"the spec (for example a new image) to start the job again"
        )
        d.problems.append(("DriverFailed", d.detail))
        d.note("DriverFailed", d.detail, warning=True)
        return
    delay = restart_delay(d.restarts, policy.backoff_seconds, policy.max_backoff_seconds)
    d.next_start = d.obs.now + delay
    d.phase = Phase.RECOVERING
    d.detail = f"{message}; restart {d.restarts} of {policy.limit} in {delay}s, from the checkpoint"
    d.note(reason, d.detail, warning=True)


def _stale(d: _Draft, pod: PodState, desired_hash: str) -> bool:
    return pod.spec_hash != desired_hash or pod.keys_id != d.obs.keys_id


def _plan_driver(d: _Draft, desired_hash: str, blocked: bool) -> None:
    obs, spec, job = d.obs, d.spec, d.obs.job
    pod = obs.driver
    if pod is not None and pod.deleting:
        return
    if pod is None:
        if d.phase in (Phase.STARTING, Phase.RUNNING):
            _driver_failed(d, "DriverLost", "the driver pod disappeared")
        elif d.phase is Phase.RECOVERING and d.next_start and obs.now < d.next_start:
            d.detail = (
                f"{d.last_failure or 'the driver failed'}; restart {d.restarts} of "
                f"{d.spec.restart.limit} at {iso(d.next_start)}, from the checkpoint"
            )
        elif blocked:
            d.phase = Phase.PENDING
        else:
            d.create.append(m.build_driver_pod(job, spec, obs.keys_id))
            d.note("DriverCreated", f"created driver pod {m.driver_pod_name(job)}")
            d.phase = Phase.STARTING
            d.next_start = None
        return
    ended = pod.phase == "Failed" or (pod.phase == "Succeeded" and spec.restart.type == "Always")
    if ended:
        if pod.uid != d.failed_uid:
            d.failed_uid = pod.uid
            what = pod.message or f"the driver pod ended with phase {pod.phase}"
            _driver_failed(d, "DriverFailed", what)
        d.stop(pod, 0)
    elif pod.phase == "Succeeded":
        d.phase = Phase.SUCCEEDED
        d.detail = "the driver exited cleanly"
        d.stop(pod, 0)
    elif _stale(d, pod, desired_hash):
        d.phase = Phase.RESTARTING
        if pod.spec_hash != desired_hash:
            reason, what = "SpecChanged", "the spec changed"
        else:
            reason, what = "KeysChanged", f"Secret {m.secret_name(job)} was replaced"
        d.detail = f"{what}; the driver stops gracefully and resumes from the checkpoint"
        d.note(reason, d.detail)
        d.stop(pod, spec.graceful_stop_seconds)
    elif pod.phase == "Running":
        d.phase = Phase.RUNNING
        if d.running_since is None:
            d.running_since = obs.now
        elif obs.now - d.running_since >= STABLE_RUN_SECONDS:
            d.restarts = 0
    else:
        d.phase = Phase.STARTING


def _without_draining(
    d: _Draft, pod: PodState, outcome: str, since: float | None
) -> tuple[str, bool] | None:
    """Why ``pod`` is deleted without (more) draining, and whether that is a warning.

    None means drain it first: the driver runs and knows the executor, and the
    drain has neither ended nor outlived the graceful-stop time. ``outcome`` is
    the driver's word on the drain ("" if none), ``since`` when it began.
    """
    report, bound = d.obs.driver_report, d.spec.graceful_stop_seconds
    if pod.executor_id is None:
        return "it has no executor id", False
    if outcome == "decommissioned":
        return "", False
    if pod.phase in ("Failed", "Succeeded"):
        return f"it had ended ({pod.message or pod.phase})", False
    if report is None:
        return "the driver is not running or does not answer", since is not None
    if outcome.startswith("failed"):
        return f"draining {outcome}", True
    # A drained executor leaves the list a moment before its outcome is recorded.
    if str(pod.executor_id) not in report.registered and outcome != "draining":
        return "the executor is not registered with the driver", False
    if since is not None and d.obs.now - since >= bound:
        return f"draining took longer than gracefulStopTimeoutSeconds ({bound}s)", True
    return None


def _remove_executor(d: _Draft, pod: PodState) -> None:
    """Scale-down of one pod: drain its executor through the driver, then delete the pod."""
    eid = str(pod.executor_id)
    report = d.obs.driver_report
    outcome = report.decommissions.get(eid, "") if report else ""
    since = d.obs.status.draining_since.get(pod.name)
    why = _without_draining(d, pod, outcome, since)
    if why is None:
        if since is None:
            d.note(
                "ExecutorDraining",
                f"scaled down: draining executor {eid} (pod {pod.name}) through the driver; "
                f"its pod is deleted once no task or block is left on it",
            )
        d.draining[pod.name] = d.obs.now if since is None else since
        if outcome != "draining":
            d.drain.append(eid)
        return
    reason, warning = why
    ended = pod.phase in ("Failed", "Succeeded")
    d.stop(pod, 0 if ended else d.spec.graceful_stop_seconds)
    how = f"without draining: {reason}" if reason else "after draining"
    d.note("ExecutorRemoved", f"scaled down: deleting executor pod {pod.name} {how}", warning)


def _plan_executors(d: _Draft, desired_hash: str, blocked: bool) -> None:
    obs, spec, job = d.obs, d.spec, d.obs.job
    driver_current = obs.driver is None or not _stale(d, obs.driver, desired_hash)
    # Scale-down removes the executors whose ids fall out: the highest-numbered, or
    # those the autoscaler chose (obs.removed_executors).
    wanted = executor_ids(spec.replicas, obs.removed_executors)
    taken: set[int] = set()
    for pod in obs.executors:
        eid = pod.executor_id
        if pod.deleting:
            if eid is not None:
                taken.add(eid)
            continue
        if eid is None or eid not in wanted:
            # Before the Failed/Succeeded check: a drained executor exits 0, and is not lost.
            _remove_executor(d, pod)
        elif pod.phase in ("Failed", "Succeeded"):
            d.stop(pod, 0)
            why = pod.message or f"it ended with phase {pod.phase}"
            d.note("ExecutorLost", f"executor pod {pod.name} is lost ({why}); replacing it", True)
            taken.add(eid)
        elif _stale(d, pod, desired_hash) and driver_current:
            d.stop(pod, spec.graceful_stop_seconds)
            d.note("ExecutorRestarted", f"the spec changed; restarting executor pod {pod.name}")
            taken.add(eid)
        else:
            taken.add(eid)
    if blocked:
        return
    for eid in wanted:
        if eid not in taken:
            d.create.append(m.build_executor_pod(job, spec, eid, obs.keys_id))
            d.note("ExecutorCreated", f"created executor pod {m.executor_pod_name(job, eid)}")


def _stop_all(d: _Draft) -> bool:
    """Stop the driver first, executors once it is gone; True when no pod is left."""
    obs = d.obs
    if obs.driver is not None:
        grace = 0 if obs.driver.phase in ("Failed", "Succeeded") else d.spec.graceful_stop_seconds
        d.stop(obs.driver, grace)
        return False
    for pod in obs.executors:
        d.stop(pod, d.spec.graceful_stop_seconds)
    return not obs.executors


def _conditions(d: _Draft, ready: int) -> list[Condition]:
    spec, phase = d.spec, d.phase
    executors = f"{ready}/{spec.replicas} executors ready"
    is_ready = phase is Phase.RUNNING and ready >= spec.min_executors
    if is_ready:
        ready_cond = Condition("Ready", True, "Running", f"the driver is running; {executors}")
    elif phase is Phase.RUNNING:
        ready_cond = Condition(
            "Ready",
            False,
            "TooFewExecutors",
            f"{executors}, fewer than executors.min ({spec.min_executors})",
        )
    else:
        ready_cond = Condition("Ready", False, phase.value, phase.description)
    moving = phase in (
        Phase.PENDING,
        Phase.STARTING,
        Phase.RESTARTING,
        Phase.RECOVERING,
        Phase.SUSPENDING,
    ) or (phase is Phase.RUNNING and ready != spec.replicas)
    progress_msg = d.detail or (phase.description if phase is not Phase.RUNNING else executors)
    progressing = Condition(
        "Progressing",
        moving,
        phase.value if moving else "Stable",
        progress_msg if moving else phase.description,
    )
    if d.problems:
        reason, _ = d.problems[0]
        degraded = Condition("Degraded", True, reason, "; ".join(msg for _, msg in d.problems))
    elif phase is Phase.RECOVERING:
        degraded = Condition("Degraded", True, "DriverRestarting", d.detail or phase.description)
    else:
        degraded = Condition("Degraded", False, "AsExpected", "no problem found")
    return [ready_cond, progressing, degraded]


def _status(d: _Draft, desired_hash: str) -> dict[str, Any]:
    obs, spec = d.obs, d.spec
    live = [p for p in obs.executors if not p.deleting]
    ready = sum(1 for p in live if p.ready and p.phase == "Running")
    desired = 0 if d.phase in (Phase.SUSPENDED, Phase.SUSPENDING) else spec.replicas
    if d.phase.terminal:
        desired = 0
    return {
        "phase": d.phase.value,
        "observedGeneration": obs.generation,
        "conditions": merge_conditions(
            obs.status.conditions, _conditions(d, ready), iso(obs.now), obs.generation
        ),
        "executors": f"{ready}/{desired}",
        "readyExecutors": ready,
        "desiredExecutors": desired,
        "selector": m.executor_selector(obs.job),
        "driverRestarts": d.restarts,
        "failedDriverUid": d.failed_uid or None,
        "nextDriverStart": iso(d.next_start) if d.next_start else None,
        "runningSince": iso(d.running_since) if d.running_since else None,
        "lastDriverFailure": d.last_failure or None,
        "specHash": desired_hash,
        "drainingExecutors": [{"pod": pod, "since": iso(t)} for pod, t in d.draining.items()]
        or None,
    }


def _driver_problems(d: _Draft) -> None:
    """What the running driver reports wrong makes the job Degraded (after the pods are
    planned: they are not held back by it); a problem newly reported is an Event."""
    report = d.obs.driver_report
    if report is None:
        return
    shown = " ".join(
        f"{c.get('reason')} {c.get('message')}"
        for c in d.obs.status.conditions
        if c.get("type") == "Degraded" and c.get("status") == "True"
    )
    for reason, message in report.problems:
        d.problems.append((reason, message))
        # The text before the first ':' names the problem and stays while it lasts.
        if message.split(":", 1)[0] not in shown:
            d.note(reason, message, warning=True)


def _recorded_failure(status: JobStatus) -> tuple[str, str]:
    """The reason and message a Failed job recorded, so later passes keep showing them."""
    for cond in status.conditions:
        if cond.get("type") == "Degraded" and cond.get("status") == "True":
            return str(cond.get("reason")), str(cond.get("message"))
    return "DriverFailed", "the driver failed; change the spec to start the job again"


def _invalid(obs: Observed, reason: str, message: str, waiting_for: str) -> Plan:
    phase = obs.status.phase or Phase.PENDING
    conditions = [
        Condition("Ready", False, reason, message),
        Condition("Progressing", False, reason, waiting_for),
        Condition("Degraded", True, reason, message),
    ]
    status: dict[str, Any] = {
        "phase": phase.value,
        "observedGeneration": obs.generation,
        "conditions": merge_conditions(
            obs.status.conditions, conditions, iso(obs.now), obs.generation
        ),
    }
    if not obs.name_problem:
        status["selector"] = m.executor_selector(obs.job)
    events: tuple[Note, ...] = ()
    if obs.status.observed_generation != obs.generation:
        events = (Note("Warning", reason, message),)
    return Plan(status=status, events=events)


def _ui_tokens(d: _Draft) -> TokenRotation | None:
    """A rotation of the job's read and change tokens when its StreamingJob asks for one
    (or the Secret's generation is malformed), else the Secret's ui-read-token put back
    in step with its generation when it is not."""
    obs = d.obs
    if "Secret" not in obs.children:
        return None
    secret = m.secret_name(obs.job)
    requested = obs.rotate_ui_tokens != obs.ui_tokens_rotated_for
    if obs.ui_token_generation is None:
        generation = 1
        why = f"its {m.TOKEN_GENERATION_KEY} was not a non-negative integer"
        malformed = True
    elif requested:
        generation = obs.ui_token_generation + 1
        why = f"asked by the {m.ROTATE_UI_TOKENS_ANNOTATION} annotation"
        malformed = False
    elif obs.read_token_stale:
        return TokenRotation(obs.ui_token_generation, obs.ui_tokens_rotated_for)
    else:
        return None
    d.note(
        "UITokensRotated",
        f"Secret {secret}: read and change tokens of generation {generation} ({why}); pods "
        "take them when the kubelet updates their copy of the Secret, the old ones are "
        "refused from then on",
        warning=malformed,
    )
    return TokenRotation(generation, obs.rotate_ui_tokens)


def plan(obs: Observed) -> Plan:
    """Converge one job towards its spec: the level-based heart of the operator.

    A job whose name its children cannot use gets nothing, only a Degraded condition.
    """
    if obs.name_problem:
        return _invalid(obs, "InvalidName", obs.name_problem, "waiting for the job's deletion")
    if isinstance(obs.spec, SpecError):
        return _invalid(obs, "InvalidSpec", str(obs.spec), "waiting for a corrected spec")
    d = _Draft(obs, obs.spec)
    before = d.phase
    new_generation = obs.status.observed_generation != obs.generation
    if d.phase.terminal and new_generation:
        d.phase, d.restarts, d.next_start, d.failed_uid = Phase.PENDING, 0, None, ""
        d.note("Retrying", "the spec changed; starting the job again")
    desired_hash = m.spec_hash(d.spec)
    create_keys, update_config, set_owned = _ensure_children(d)
    issue_certificate = _issue_certificate(d, create_keys)
    update_scrape_token = obs.scrape_token_stale and not create_keys
    if update_scrape_token:
        d.note(
            "ScrapeTokenRotated", f"Secret {m.secret_name(obs.job)}: the operator's scrape token"
        )
    ui_tokens = TokenRotation(0, obs.rotate_ui_tokens) if create_keys else _ui_tokens(d)
    # Pods wait for the key Secret: they record which key pair they start with.
    blocked = bool(d.problems) or create_keys
    if d.spec.suspend:
        d.restarts, d.next_start, d.running_since = 0, None, None
        d.phase = Phase.SUSPENDED if _stop_all(d) else Phase.SUSPENDING
    elif d.phase.terminal:
        _stop_all(d)
        if d.phase is Phase.FAILED:
            d.problems.append(_recorded_failure(obs.status))
    else:
        if d.phase in (Phase.SUSPENDED, Phase.SUSPENDING):
            d.phase = Phase.PENDING
        _plan_driver(d, desired_hash, blocked)
        if d.phase.terminal:
            _stop_all(d)
        else:
            _plan_executors(d, desired_hash, blocked)
    if d.phase is not Phase.RUNNING:
        d.running_since = None
    else:
        _driver_problems(d)
    if d.phase is not before:
        text = d.detail or d.phase.description
        warn = d.phase in (Phase.FAILED, Phase.RECOVERING)
        d.note(d.phase.value, f"{before.value} -> {d.phase.value}: {text}", warn)
    return Plan(
        create_keys=create_keys,
        issue_certificate=issue_certificate,
        update_scrape_token=update_scrape_token,
        ui_tokens=ui_tokens,
        create=tuple(d.create),
        update_config=update_config,
        update_network_policy=d.update_network_policy,
        set_claim_owned=set_owned,
        delete=tuple(d.delete),
        drain=tuple(d.drain),
        status=_status(d, desired_hash),
        events=tuple(d.events),
    )


def plan_stop(
    driver: PodState | None, executors: tuple[PodState, ...], grace: int
) -> tuple[tuple[Deletion, ...], bool]:
    """Deletions for a job being deleted (driver first) and whether all pods are gone."""
    if driver is not None:
        if driver.deleting:
            return (), False
        return (Deletion(driver.name, driver.uid, grace),), False
    deletes = tuple(Deletion(p.name, p.uid, grace) for p in executors if not p.deleting)
    return deletes, not executors
