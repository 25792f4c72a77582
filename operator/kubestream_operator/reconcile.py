"""One reconcile pass: observe -> plan -> apply -> record status and Events.

Observing includes the running driver's status document; applying includes
asking the driver to drain executors that a scale-down removes.

Called by the kopf handlers for every trigger (create, update, resume, timer,
a child pod changing), always on a fresh read of the job, so passes are
level-based and idempotent. API failures end up in the Degraded condition
instead of crashing the operator. Nothing is created for a job being deleted or
in a namespace being deleted, and Events are best-effort: failing to post one
(as in a terminating namespace) never fails a pass or the deletion finalizer.
"""

import base64
import binascii
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kubestream.driver.api_auth import api_token, parse_generation, read_token
from kubestream_operator import autoscale, certificates, driver_status
from kubestream_operator import manifests as m
from kubestream_operator.keys import curve_keypair
from kubestream_operator.kube import ApiError, Cluster
from kubestream_operator.metrics import OperatorMetrics
from kubestream_operator.observe import job_ref, observe, pods_of
from kubestream_operator.phases import Condition, Phase, merge_conditions, phase_named
from kubestream_operator.plan import (
    Note,
    Observed,
    Plan,
    PodState,
    TokenRotation,
    iso,
    plan,
    plan_stop,
)
from kubestream_operator.spec import JobSpec

log = logging.getLogger(__name__)

RESTART_REASONS = frozenset({"DriverFailed", "DriverLost"})


class _EndingError(Exception):
    """The job or its namespace is being deleted: the pass stops, creating nothing."""


def _may_create(cluster: Cluster, job: m.JobRef) -> bool:
    """Whether children may still be created: neither the job nor its namespace is going."""
    current = cluster.get_job(job.namespace, job.name)
    if current is None or current["metadata"].get("deletionTimestamp"):
        return False
    return not cluster.namespace_terminating(job.namespace)


def post_event(cluster: Cluster, job: m.JobRef, note: Note) -> None:
    """Post an Event if the API lets us: a lost Event must not fail the caller."""
    try:
        cluster.post_event(job, note.type, note.reason, note.message)
    except ApiError as err:
        level = logging.DEBUG if err.namespace_terminating else logging.WARNING
        log.log(level, "%s/%s: Event %s not posted: %s", job.namespace, job.name, note.reason, err)


def _certificate(cluster: Cluster, job: m.JobRef, now: float) -> dict[str, str]:
    """A new UI certificate for the job's Secret, trusted beside the one it replaces."""
    names = certificates.server_names(m.service_name(job), job.namespace)
    made = certificates.make(names, datetime.fromtimestamp(now, UTC))
    previous = _secret_value(cluster, job.namespace, m.secret_name(job), m.TLS_CA_KEY)
    trusted = certificates.trust_bundle(made.cert_pem, previous, now)
    return m.certificate_data(made.cert_pem, made.key_pem, trusted)


def _apply(cluster: Cluster, job: m.JobRef, todo: Plan, now: float) -> None:
    """Carry out a plan; raises _EndingError instead of creating for a job on its way out."""
    if (todo.create_keys or todo.create) and not _may_create(cluster, job):
        raise _EndingError
    tls = _certificate(cluster, job, now) if todo.issue_certificate else None
    if todo.create_keys:
        public, secret = curve_keypair()
        asked = todo.ui_tokens.rotated_for if todo.ui_tokens is not None else ""
        cluster.create(m.build_secret(job, public, secret, cluster.scrape_token, tls, asked))
    elif tls is not None:
        cluster.update_secret(job.namespace, m.secret_name(job), tls)
    if todo.update_scrape_token:
        token = cluster.scrape_token or None
        cluster.update_secret(job.namespace, m.secret_name(job), {m.SCRAPE_TOKEN_KEY: token})
    if todo.ui_tokens is not None and not todo.create_keys:
        _rotate_ui_tokens(cluster, job, todo.ui_tokens)
    for manifest in todo.create:
        cluster.create(manifest)
    if todo.update_config is not None:
        cluster.replace_config_map(todo.update_config)
    if todo.update_network_policy is not None:
        cluster.replace_network_policy(todo.update_network_policy)
    if todo.set_claim_owned is not None:
        cluster.set_claim_owned(job, *todo.set_claim_owned)
    for gone in todo.delete:
        cluster.delete_pod(job.namespace, gone.name, gone.uid, gone.grace)


def _rotate_ui_tokens(cluster: Cluster, job: m.JobRef, rotation: TokenRotation) -> None:
    secret_key = _secret_key(cluster, job)
    if secret_key is None:
        log.warning("%s/%s: no CURVE secret key to derive UI tokens from", job.namespace, job.name)
        return
    cluster.update_secret(
        job.namespace,
        m.secret_name(job),
        m.ui_token_data(secret_key, rotation.generation),
        {m.ROTATE_UI_TOKENS_ANNOTATION: rotation.rotated_for or None},
    )


def ui_tokens(cluster: Cluster, job: m.JobRef) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The job's read tokens and change tokens to try in turn: those of the token
    generation in its Secret, then those of the one before, which a pod still holds
    until the kubelet updates its copy of the Secret (up to about a minute), then
    generation 0's, which pods made before token generations (no generation file)
    hold until they restart; None without a CURVE secret key or with a malformed
    generation."""
    secret_key = _secret_key(cluster, job)
    text = _secret_value(cluster, job.namespace, m.secret_name(job), m.TOKEN_GENERATION_KEY)
    generation = parse_generation(text)
    if secret_key is None or generation is None:
        return None
    generations = tuple(dict.fromkeys((generation, max(generation - 1, 0), 0)))
    return (
        tuple(read_token(secret_key, g) for g in generations),
        tuple(api_token(secret_key, g) for g in generations),
    )


def _observe(
    cluster: Cluster, job: m.Manifest, now: float
) -> tuple[Observed, dict[str, Any] | None]:
    """The job's objects, plus the running driver's status document when it answers."""
    obs = observe(cluster, job, now)
    driver = obs.driver
    if driver is None or driver.phase != "Running" or not driver.ip or driver.deleting:
        return obs, None
    tokens = ui_tokens(cluster, obs.job)
    doc = driver_status.fetch(
        driver_api(cluster, obs.job, obs.spec, driver), tokens[0] if tokens else ""
    )
    if doc is None:
        return obs, None
    return replace(obs, driver_report=driver_status.executor_report(doc)), doc


def _secret_value(cluster: Cluster, namespace: str, name: str, key: str) -> str | None:
    secret = cluster.get_child("Secret", namespace, name)
    data: Mapping[str, str] = (secret or {}).get("data") or {}
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (KeyError, binascii.Error, UnicodeDecodeError):
        return None


def _secret_key(cluster: Cluster, job: m.JobRef) -> str | None:
    """The CURVE secret key in the job's Secret, which the UI's tokens derive from."""
    return _secret_value(cluster, job.namespace, m.secret_name(job), m.SECRET_KEY)


def driver_api(
    cluster: Cluster, job: m.JobRef, spec: JobSpec | Exception, driver: PodState
) -> driver_status.DriverAPI:
    """The driver's UI port; with TLS, verified against the ca.crt of the user's TLS Secret
    or of the job's own (the operator's certificate), and no other CA, under the driver
    Service's DNS name."""
    if not isinstance(spec, JobSpec) or not spec.ui.tls:
        return driver_status.DriverAPI(driver.ip, m.UI_PORT)
    holder = spec.ui.tls_secret or m.secret_name(job)
    ca = _secret_value(cluster, job.namespace, holder, m.TLS_CA_KEY) or ""
    name = f"{m.service_name(job)}.{job.namespace}.svc"
    return driver_status.DriverAPI(driver.ip, m.UI_PORT, ca, name)


def _drain(
    cluster: Cluster,
    job: m.JobRef,
    spec: JobSpec | Exception,
    driver: PodState,
    executor_ids: tuple[str, ...],
) -> None:
    """Ask the driver to drain executors; one it refuses is asked again next pass."""
    tokens = ui_tokens(cluster, job)
    if tokens is None:
        log.warning(
            "%s/%s: no CURVE secret key or token generation to drain executors with",
            job.namespace,
            job.name,
        )
        return
    api = driver_api(cluster, job, spec, driver)
    for eid in executor_ids:
        refused = driver_status.decommission(api, eid, tokens[1])
        if refused:
            log.warning(
                "%s/%s: executor %s not drained yet: %s", job.namespace, job.name, eid, refused
            )


def reconcile(
    cluster: Cluster,
    namespace: str,
    name: str,
    metrics: OperatorMetrics,
    clock: Callable[[], float] = time.time,
) -> None:
    """Converge one job; a job that no longer exists is forgotten."""
    job = cluster.get_job(namespace, name)
    if job is None or job["metadata"].get("deletionTimestamp"):
        return
    metrics.reconciles.inc()
    ref = job_ref(job)
    now = clock()
    notes: list[Note] = []
    try:
        # A pass that creates the key Secret plans again at once: pods need its uid.
        for _ in range(2):
            obs, doc = _observe(cluster, job, now)
            todo = plan(obs)
            _apply(cluster, ref, todo, now)
            if todo.drain and obs.driver is not None:
                _drain(cluster, ref, obs.spec, obs.driver, todo.drain)
            notes.extend(todo.events)
            if not todo.create_keys:
                break
            job = cluster.get_job(namespace, name) or job
    except _EndingError:
        log.info("%s/%s: being deleted; nothing more is created for it", namespace, name)
        return
    except ApiError as err:
        if err.namespace_terminating:
            log.info("%s/%s: its namespace is being deleted: %s", namespace, name, err)
            return
        metrics.errors.labels("api").inc()
        log.warning("reconcile of %s/%s failed: %s", namespace, name, err)
        _record_error(cluster, job, str(err), now)
        return
    if doc is not None:
        todo.status.update(driver_status.batch_fields(doc))
        loss = driver_status.data_loss(doc)
        note = driver_status.data_loss_note((job.get("status") or {}).get("dataLoss"), loss)
        if note is not None:
            notes.append(note)
            todo.status["dataLoss"] = loss
    if isinstance(obs.spec, JobSpec):
        try:
            todo.status.update(_autoscale(cluster, job, obs.spec, doc, todo, now, metrics, notes))
        except ApiError as err:
            metrics.errors.labels("api").inc()
            log.warning("autoscaling %s/%s failed: %s", namespace, name, err)
    cluster.patch_job_status(ref, todo.status)
    metrics.set_phase(namespace, name, todo.status.get("phase"))
    for note in notes:
        if note.reason in RESTART_REASONS:
            metrics.driver_restarts.inc()
        log.info("%s/%s %s: %s", namespace, name, note.reason, note.message)
        post_event(cluster, ref, note)


def _autoscale(
    cluster: Cluster,
    job: m.Manifest,
    spec: JobSpec,
    doc: Mapping[str, Any] | None,
    todo: Plan,
    now: float,
    metrics: OperatorMetrics,
    notes: list[Note],
) -> dict[str, Any]:
    """Evaluate the autoscaler and apply its count: status fields to record ({} for none)."""
    if not spec.autoscaling.enabled:
        # Turning autoscaling off forgets its state, so turning it on again starts afresh.
        return {"autoscaler": None} if (job.get("status") or {}).get("autoscaler") else {}
    if doc is None or todo.status.get("phase") != "Running":
        return {}
    done = autoscale.evaluate(job, spec, doc, now)
    decision = done.decision
    metrics.autoscaler_decisions.labels(decision.action.value, decision.reason.value).inc()
    if done.annotations:
        version = str(job["metadata"].get("resourceVersion") or "")
        try:
            cluster.scale_job(job_ref(job), version, done.scale_to, done.annotations)
        except ApiError as err:
            if err.status != 409:
                raise
            return {}  # the job changed since it was read: evaluate again on the next pass
    notes.extend(done.events)
    return {"autoscaler": done.status}


def _record_error(cluster: Cluster, job: m.Manifest, message: str, now: float) -> None:
    """Put an API failure into the Degraded condition, keeping the other conditions."""
    ref = job_ref(job)
    status = job.get("status") or {}
    old = status.get("conditions") or []
    generation = int(job["metadata"].get("generation") or 0)
    kept = [
        Condition(c["type"], c.get("status") == "True", c.get("reason", ""), c.get("message", ""))
        for c in old
        if c.get("type") != "Degraded"
    ]
    conditions = merge_conditions(
        old, [*kept, Condition("Degraded", True, "ApiError", message)], iso(now), generation
    )
    repeated = any(
        c.get("type") == "Degraded"
        and c.get("reason") == "ApiError"
        and c.get("message") == message
        for c in old
    )
    try:
        cluster.patch_job_status(ref, {"conditions": conditions})
    except ApiError as err:
        log.warning("could not record the failure on %s: %s", ref.name, err)
        return
    if not repeated:  # one Event per distinct failure, not one per resync
        post_event(cluster, ref, Note("Warning", "ApiError", message))


def graceful_stop_seconds(job: m.Manifest) -> int:
    """The job's graceful-stop time, as its pods were given it."""
    return int((job.get("spec") or {}).get("gracefulStopTimeoutSeconds") or 60)


def announce_deletion(cluster: Cluster, job: m.Manifest) -> None:
    """Show the Deleting phase and post its Event, once per deletion."""
    if phase_named((job.get("status") or {}).get("phase")) is Phase.DELETING:
        return
    ref = job_ref(job)
    cluster.patch_job_status(ref, {"phase": Phase.DELETING.value})
    post_event(cluster, ref, Note("Normal", "Deleting", "stopping the driver, then the executors"))


def stop(cluster: Cluster, job: m.Manifest) -> bool:
    """Stop a deleted job's pods, driver first; True once none is left.

    Reads only the job's pods, so a job whose other children were never made
    (or cannot be listed) is still deleted.
    """
    ref = job_ref(job)
    driver, executors = pods_of(cluster, ref)
    deletions, done = plan_stop(driver, executors, graceful_stop_seconds(job))
    for gone in deletions:
        log.info("%s/%s: stopping pod %s (%ds)", ref.namespace, ref.name, gone.name, gone.grace)
        cluster.delete_pod(ref.namespace, gone.name, gone.uid, gone.grace)
    return done
