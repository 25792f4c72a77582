"""Reads one StreamingJob and its children into the planner's Observed snapshot.

``pod_state`` and ``job_ref`` are pure conversions of raw API objects; ``observe``
gathers them through ``kube.Cluster``. Called by the reconciler on every pass.
"""

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from kubestream.driver.api_auth import parse_generation, read_token
from kubestream_operator import manifests as m
from kubestream_operator.certificates import Validity, validity
from kubestream_operator.kube import Cluster
from kubestream_operator.names import is_label_value, job_name_problem
from kubestream_operator.plan import (
    CLAIM,
    NETWORK_POLICY,
    REMOVED_EXECUTORS_ANNOTATION,
    Observed,
    PodState,
    parse_executor_ids,
    read_status,
)
from kubestream_operator.spec import JobSpec, SpecError, parse_spec


def job_ref(job: Mapping[str, Any]) -> m.JobRef:
    meta = job["metadata"]
    return m.JobRef(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def _termination(status: Mapping[str, Any]) -> str:
    """Why a pod ended, in words, from its container statuses."""
    for cs in status.get("containerStatuses") or []:
        done = (cs.get("state") or {}).get("terminated")
        if done:
            text = f"container {cs.get('name')} exited with code {done.get('exitCode')}"
            if done.get("reason"):
                text += f" ({done['reason']})"
            if done.get("message"):
                text += f": {str(done['message'])[:200]}"
            return text
    reason, message = status.get("reason"), status.get("message")
    return ": ".join(str(x) for x in (reason, message) if x)


def pod_state(pod: Mapping[str, Any]) -> PodState:
    meta, status = pod["metadata"], pod.get("status") or {}
    labels = meta.get("labels") or {}
    eid = labels.get(m.EXECUTOR_ID_LABEL)
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return PodState(
        name=meta["name"],
        uid=meta["uid"],
        phase=status.get("phase") or "Pending",
        ready=ready,
        spec_hash=(meta.get("annotations") or {}).get(m.SPEC_HASH_ANNOTATION, ""),
        deleting=bool(meta.get("deletionTimestamp")),
        executor_id=int(eid) if eid is not None and str(eid).isdigit() else None,
        message=_termination(status),
        ip=str(status.get("podIP") or ""),
        keys_id=(meta.get("annotations") or {}).get(m.KEYS_ANNOTATION, ""),
    )


def _owned_by(obj: Mapping[str, Any], job: m.JobRef) -> bool:
    return any(r.get("uid") == job.uid for r in obj["metadata"].get("ownerReferences") or [])


def _missing_secrets(cluster: Cluster, job: m.JobRef, spec: JobSpec) -> tuple[str, ...]:
    missing = []
    for ref in spec.secret_refs:
        secret = cluster.get_child("Secret", job.namespace, ref.secret_name)
        data = (secret or {}).get("data") or {}
        if ref.key not in data:
            missing.append(f"{ref.secret_name}/{ref.key}")
    for mount in spec.secret_mounts:
        secret = cluster.get_child("Secret", job.namespace, mount.secret_name)
        if secret is None:
            missing.append(mount.secret_name)
            continue
        data = secret.get("data") or {}
        missing += [f"{mount.secret_name}/{key}" for key, _ in mount.items if key not in data]
    return tuple(missing)


def _ui_certificate(secret: Mapping[str, Any] | None) -> Validity | None:
    """The validity of the UI port's certificate in the job's Secret, if one is there."""
    encoded = ((secret or {}).get("data") or {}).get(m.TLS_CERT_KEY)
    try:
        return validity(base64.b64decode(encoded, validate=True).decode()) if encoded else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _secret_text(secret: Mapping[str, Any] | None, key: str) -> str | None:
    """A key of a Secret, decoded; None if absent or not UTF-8 base64."""
    encoded = ((secret or {}).get("data") or {}).get(key)
    try:
        return base64.b64decode(encoded, validate=True).decode() if encoded else None
    except (binascii.Error, UnicodeDecodeError):
        return None


def _ui_tokens(
    secret: Mapping[str, Any] | None,
) -> tuple[int | None, bool, str]:
    """The job's token generation in its Secret (None: malformed), whether the Secret's
    ui-read-token is not the one that generation gives, and the rotation request the
    operator last carried out (the Secret's ROTATE_UI_TOKENS_ANNOTATION)."""
    if secret is None:
        return 0, False, ""
    generation = parse_generation(_secret_text(secret, m.TOKEN_GENERATION_KEY))
    secret_key = _secret_text(secret, m.SECRET_KEY)
    stale = False
    if generation is not None and secret_key:
        found = _secret_text(secret, m.READ_TOKEN_KEY) or ""
        expected = read_token(secret_key, generation)
        stale = not hmac.compare_digest(found.encode(), expected.encode())
    done = (secret["metadata"].get("annotations") or {}).get(m.ROTATE_UI_TOKENS_ANNOTATION, "")
    return generation, stale, str(done)


def _scrape_token_stale(secret: Mapping[str, Any] | None, token: str) -> bool:
    """Whether the Secret's scrape token differs from ``token`` (the operator's; "": none)."""
    if secret is None:
        return False
    encoded = (secret.get("data") or {}).get(m.SCRAPE_TOKEN_KEY)
    try:
        found = base64.b64decode(encoded, validate=True).decode() if encoded else ""
    except (binascii.Error, UnicodeDecodeError):
        return True
    return not hmac.compare_digest(found.encode(), token.encode())


def pods_of(cluster: Cluster, job: m.JobRef) -> tuple[PodState | None, tuple[PodState, ...]]:
    """The job's driver pod and executor pods (only those it owns).

    A name that is no label value cannot be on any pod, and would make the
    selector invalid: such a job has no pods, which lets its deletion finish.
    """
    if not is_label_value(job.name):
        return None, ()
    pods = [
        p
        for p in cluster.list_pods(job.namespace, f"{m.JOB_LABEL}={job.name}")
        if _owned_by(p, job)
    ]
    driver = None
    executors = []
    for pod in pods:
        role = (pod["metadata"].get("labels") or {}).get(m.ROLE_LABEL)
        if role == "driver":
            driver = pod_state(pod)
        elif role == "executor":
            executors.append(pod_state(pod))
    executors.sort(key=lambda p: (p.executor_id is None, p.executor_id or 0, p.name))
    return driver, tuple(executors)


def observe(cluster: Cluster, job: Mapping[str, Any], now: float) -> Observed:
    ref = job_ref(job)
    spec: JobSpec | SpecError
    try:
        spec = parse_spec(job.get("spec") or {})
    except SpecError as err:
        spec = err
    status = read_status(job.get("status") or {})
    generation = int(job["metadata"].get("generation") or 0)
    problem = job_name_problem(ref.name)
    if problem is not None:
        # Nothing was made under a name like this; read nothing either.
        return Observed(ref, generation, spec, status, now, name_problem=problem)
    driver, executors = pods_of(cluster, ref)
    if isinstance(spec, SpecError):
        return Observed(ref, generation, spec, status, now, driver=driver, executors=executors)
    names = {
        "Secret": m.secret_name(ref),
        "ServiceAccount": m.service_account_name(ref),
        "ConfigMap": m.config_map_name(ref),
        "Service": m.service_name(ref),
        NETWORK_POLICY: m.network_policy_name(ref),
        CLAIM: m.claim_name(ref, spec),
    }
    found = {kind: cluster.get_child(kind, ref.namespace, name) for kind, name in names.items()}
    config = found["ConfigMap"]
    claim = found[CLAIM]
    token_generation, read_token_stale, rotated_for = _ui_tokens(found["Secret"])
    return Observed(
        job=ref,
        generation=generation,
        spec=spec,
        status=status,
        now=now,
        children=frozenset(kind for kind, obj in found.items() if obj is not None),
        config_data=(config.get("data") or {}) if config else None,
        claim_owned=_owned_by(claim, ref) if claim else None,
        missing_secrets=_missing_secrets(cluster, ref, spec),
        keys_id=str(found["Secret"]["metadata"]["uid"]) if found["Secret"] else "",
        ui_namespaces=cluster.ui_namespaces,
        network_policy_spec=(found[NETWORK_POLICY] or {}).get("spec"),
        ui_certificate=_ui_certificate(found["Secret"]),
        scrape_token_stale=_scrape_token_stale(found["Secret"], cluster.scrape_token),
        rotate_ui_tokens=str(
            (job["metadata"].get("annotations") or {}).get(m.ROTATE_UI_TOKENS_ANNOTATION, "")
        ),
        ui_tokens_rotated_for=rotated_for,
        ui_token_generation=token_generation,
        read_token_stale=read_token_stale,
        driver=driver,
        executors=executors,
        removed_executors=parse_executor_ids(
            (job["metadata"].get("annotations") or {}).get(REMOVED_EXECUTORS_ANNOTATION)
        ),
    )
