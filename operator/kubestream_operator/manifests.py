"""Pure builders of every object the operator creates for a StreamingJob.

Each function returns a plain manifest dict for one child; the reconciler
decides which ones to create and ``kube`` sends them. Pods are configured only
through environment variables, the interface of ``kubestream driver`` and
``kubestream executor``; the CURVE keys reach them through secretKeyRef, so no
key ever appears in a pod spec, a log or an event. The user's connector
credentials come the same two ways, by reference only: variables from Secret keys
(spec.secretRefs) and Secrets mounted read-only as files (spec.secretMounts).
"""

import hashlib
import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kubestream import settings
from kubestream.driver.api_auth import read_token
from kubestream.settings import Setting
from kubestream_operator.spec import JobSpec, PodSettings, SecretMount

API_VERSION = "kubestream.io/v1alpha1"
KIND = "StreamingJob"
DRIVER_PORT: int = settings.DRIVER_PORT.default
BLOCK_PORT: int = settings.BLOCK_PORT.default
UI_PORT: int = settings.UI_PORT.default
CHECKPOINT_PATH = "/checkpoint"
CONFIG_PATH = "/etc/kubestream/config"
TLS_PATH = "/etc/kubestream/tls"
ACCESS_PATH = "/etc/kubestream/access"
JOB_LABEL = "kubestream.io/job"
ROLE_LABEL = "kubestream.io/role"
EXECUTOR_ID_LABEL = "kubestream.io/executor-id"
# "https" on a driver whose UI port speaks it: a PodMonitor relabels it into __scheme__.
UI_SCHEME_LABEL = "kubestream.io/ui-scheme"
SPEC_HASH_ANNOTATION = "kubestream.io/spec-hash"
KEYS_ANNOTATION = "kubestream.io/keys"
PUBLIC_KEY = "curve-public-key"
SECRET_KEY = "curve-secret-key"
READ_TOKEN_KEY = "ui-read-token"
SCRAPE_TOKEN_KEY = "ui-scrape-token"
TOKEN_GENERATION_KEY = "ui-token-generation"
# On a StreamingJob: a new value (any) rotates its read and change tokens. On its Secret:
# the value the operator last rotated for.
ROTATE_UI_TOKENS_ANNOTATION = "kubestream.io/rotate-ui-tokens"
SECRET_FILE_MODE = 0o440
"""Mounted Secret files: readable by the pod's user and group (fsGroup), no one else."""
# The operator's certificate for the UI port (spec.ui.tls without a secretName), and the
# certificates to trust it by, under the keys of a kubernetes.io/tls Secret.
TLS_CERT_KEY = "tls.crt"
TLS_PRIVATE_KEY = "tls.key"
TLS_CA_KEY = "ca.crt"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class JobRef:
    """The identity of a StreamingJob, enough to name and own its children."""

    name: str
    namespace: str
    uid: str


def secret_name(job: JobRef) -> str:
    return f"{job.name}-curve"


def service_account_name(job: JobRef) -> str:
    return f"{job.name}-job"


def config_map_name(job: JobRef) -> str:
    return f"{job.name}-config"


def network_policy_name(job: JobRef) -> str:
    return f"{job.name}-pods"


def service_name(job: JobRef) -> str:
    return f"{job.name}-driver"


def claim_name(job: JobRef, spec: JobSpec) -> str:
    return spec.checkpoint.existing_claim or f"{job.name}-checkpoint"


def driver_pod_name(job: JobRef) -> str:
    return f"{job.name}-driver"


def executor_pod_name(job: JobRef, executor_id: int) -> str:
    return f"{job.name}-executor-{executor_id}"


def labels(job: JobRef, role: str | None = None) -> dict[str, str]:
    result = {
        "app.kubernetes.io/name": "kubestream",
        "app.kubernetes.io/instance": job.name,
        "app.kubernetes.io/managed-by": "kubestream-operator",
        JOB_LABEL: job.name,
    }
    if role:
        result[ROLE_LABEL] = role
    return result


def executor_selector(job: JobRef) -> str:
    """Label selector of the executor pods, published for the scale subresource."""
    return f"{JOB_LABEL}={job.name},{ROLE_LABEL}=executor"


def owner_reference(job: JobRef) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": job.name,
        "uid": job.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _metadata(job: JobRef, name: str, role: str | None = None, owned: bool = True) -> Manifest:
    meta: Manifest = {"name": name, "namespace": job.namespace, "labels": labels(job, role)}
    if owned:
        meta["ownerReferences"] = [owner_reference(job)]
    return meta


_DEFAULT_UI = {
    "read_access": settings.UI_READ_ACCESS.default,
    "change_access": settings.UI_CHANGE_ACCESS.default,
    "tls_secret": None,
}
_DEFAULT_MONITORING = {
    "stall_timeout": settings.STALL_TIMEOUT.default,
    "task_duration_threshold": settings.TASK_DURATION_THRESHOLD.default,
}


def spec_hash(spec: JobSpec) -> str:
    """Hash of the spec fields pods are built from; a change restarts the pods.

    Executor counts, autoscaling, restart policy and suspend are left out: they
    change how many pods run, not what a pod is. Fields added after 0.1.0 count
    only once set, so upgrading the operator restarts no running job.
    """
    fields = asdict(spec)
    for key in ("replicas", "min_executors", "max_executors", "autoscaling", "restart", "suspend"):
        fields.pop(key)
    fields["checkpoint"].pop("retain_on_delete")
    if fields["checkpoint"]["interval_seconds"] is None:
        fields["checkpoint"].pop("interval_seconds")
    for key in ("reliability", "flow_control"):
        if not any(fields[key].values()):
            fields.pop(key)
    if not fields["ui"]["operator_tls"]:
        fields["ui"].pop("operator_tls")
    if fields["ui"] == _DEFAULT_UI:
        fields.pop("ui")
    if fields["monitoring"] == _DEFAULT_MONITORING:
        fields.pop("monitoring")
    if not fields["secret_mounts"]:
        fields.pop("secret_mounts")
    if fields["kafka_consumer_pool_size"] == settings.KAFKA_CONSUMER_POOL_SIZE.default:
        fields.pop("kafka_consumer_pool_size")
    blob = json.dumps(fields, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def build_secret(
    job: JobRef,
    public_key: str,
    secret_key: str,
    scrape_token: str = "",
    tls: Mapping[str, str] | None = None,
    rotated_for: str = "",
) -> Manifest:
    """The job's CURVE key pair, which the driver and executors read as env vars; the
    UI's read token derived from it, for people (`kubectl port-forward`); the cluster's
    scrape token (a PodMonitor's), when the operator was given one; and the UI port's
    certificate when the operator makes it (``tls``: from ``certificate_data``).
    ``rotated_for``: the job's ROTATE_UI_TOKENS_ANNOTATION, already honoured by new keys."""
    data = {
        PUBLIC_KEY: public_key,
        SECRET_KEY: secret_key,
        **ui_token_data(secret_key, 0),
        **(tls or {}),
    }
    if scrape_token:
        data[SCRAPE_TOKEN_KEY] = scrape_token
    metadata = _metadata(job, secret_name(job))
    if rotated_for:
        metadata["annotations"] = {ROTATE_UI_TOKENS_ANNOTATION: rotated_for}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": data,
    }


def ui_token_data(secret_key: str, generation: int) -> dict[str, str]:
    """The Secret keys of the UI's token generation (which pods mount and derive the
    read and change tokens with) and the read token it gives, for people to copy."""
    return {
        TOKEN_GENERATION_KEY: str(generation),
        READ_TOKEN_KEY: read_token(secret_key, generation),
    }


def certificate_data(cert_pem: str, key_pem: str, trusted_pem: str) -> dict[str, str]:
    """The Secret keys of the UI port's certificate, its key, and the certificates that
    verify the driver (``trusted_pem``: this one and any predecessor still served)."""
    return {TLS_CERT_KEY: cert_pem, TLS_PRIVATE_KEY: key_pem, TLS_CA_KEY: trusted_pem}


def build_service_account(job: JobRef) -> Manifest:
    """The job pods' identity: no Role is bound to it and no token is mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(job, service_account_name(job)),
        "automountServiceAccountToken": False,
    }


def build_config_map(job: JobRef, spec: JobSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(job, config_map_name(job)),
        "data": dict(spec.configuration),
    }


def build_service(job: JobRef) -> Manifest:
    """Headless Service giving the driver a stable DNS name for executors."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job, service_name(job), "driver"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {JOB_LABEL: job.name, ROLE_LABEL: "driver"},
            "ports": [
                {"name": "driver", "port": DRIVER_PORT, "targetPort": DRIVER_PORT},
                {"name": "ui", "port": UI_PORT, "targetPort": UI_PORT},
            ],
        },
    }


def build_network_policy(job: JobRef, ui_namespaces: Sequence[str] = ()) -> Manifest:
    """Only the job's own pods reach its ZeroMQ ports; only pods in ``ui_namespaces``
    (the operator's, a monitoring namespace) reach the UI/metrics port, none if empty.
    `kubectl port-forward` goes through the kubelet, not the pod network, so it still
    reaches the page."""
    own_pods = {"matchLabels": {JOB_LABEL: job.name}}
    ui_clients = [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}
        for name in sorted(set(ui_namespaces))
    ]
    # Protocols spelt out, as the API server stores them: the operator compares what
    # it finds with this to keep the policy current.
    ui_rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": UI_PORT}]}
    if ui_clients:
        ui_rule["from"] = ui_clients
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(job, network_policy_name(job)),
        "spec": {
            "podSelector": own_pods,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": own_pods}],
                    "ports": [
                        {"protocol": "TCP", "port": DRIVER_PORT},
                        {"protocol": "TCP", "port": BLOCK_PORT},
                    ],
                },
                *([ui_rule] if ui_clients else []),
            ],
        },
    }


def build_claim(job: JobRef, spec: JobSpec) -> Manifest:
    """The checkpoint claim; owned by the job only when it is not to be retained."""
    claim: Manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(job, claim_name(job, spec), owned=claim_owned(spec)),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": spec.checkpoint.size}},
        },
    }
    if spec.checkpoint.storage_class:
        claim["spec"]["storageClassName"] = spec.checkpoint.storage_class
    return claim


def claim_owned(spec: JobSpec) -> bool:
    """Whether garbage collection should delete the claim with the job."""
    return not spec.checkpoint.retain_on_delete


def graceful_timeout(spec: JobSpec) -> float:
    """The driver's own deadline for finishing batches on stop.

    Shorter than the pod's grace period, which ends in SIGKILL: after its
    deadline the driver still writes a final checkpoint and exits, and needs
    time for that (up to 5 s, a fifth of a short grace period).
    """
    grace = spec.graceful_stop_seconds
    return grace - min(5.0, grace / 5)


EnvValue = str | int | float | bool | dict[str, Any] | None
"""A setting's value for a pod: plain (formatted by its declaration), a ``valueFrom``
source, or None to leave the variable unset (the runtime's default)."""


def _key_ref(job: JobRef, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": secret_name(job), "key": key}}


SCRAPE_TOKEN_FILE = f"{ACCESS_PATH}/{SCRAPE_TOKEN_KEY}"
TOKEN_GENERATION_FILE = f"{ACCESS_PATH}/{TOKEN_GENERATION_KEY}"


def _access_volume(job: JobRef) -> dict[str, Any]:
    """The scrape token and the token generation of the job's Secret as files (only
    those keys), which the kubelet updates when the operator rotates them. Optional: a
    Secret made before scrape tokens (or by an operator given none) or before token
    generations lacks the key, which the runtime takes as no token, or generation 0."""
    items = [{"key": key, "path": key} for key in (SCRAPE_TOKEN_KEY, TOKEN_GENERATION_KEY)]
    return {
        "name": "access",
        "secret": {"secretName": secret_name(job), "items": items, "optional": True},
    }


def driver_settings(job: JobRef, spec: JobSpec) -> list[tuple[Setting[Any], EnvValue]]:
    """What the operator sets of the settings `kubestream driver` reads."""
    return [
        (settings.JOB, job.name),
        (settings.APP, spec.app),
        (settings.APP_ARGS, shlex.join(spec.app_args)),
        (settings.BATCH_INTERVAL, spec.batch_interval),
        (settings.DRIVER_PORT, DRIVER_PORT),
        (settings.UI_PORT, UI_PORT),
        (settings.CONFIG, CONFIG_PATH),
        (settings.GRACEFUL_TIMEOUT, graceful_timeout(spec)),
        (settings.CHECKPOINT, CHECKPOINT_PATH),
        (settings.WRITE_AHEAD_LOG, spec.reliability.write_ahead_log),
        (settings.BACKPRESSURE, spec.flow_control.backpressure),
        (settings.CHECKPOINT_INTERVAL, spec.checkpoint.interval_seconds),
        (settings.MAX_RATE, spec.flow_control.max_rate_per_receiver),
        (settings.BLOCK_INTERVAL, spec.flow_control.block_interval),
        (settings.STALL_TIMEOUT, spec.monitoring.stall_timeout),
        (settings.TASK_DURATION_THRESHOLD, spec.monitoring.task_duration_threshold),
        (settings.CURVE_PUBLIC_KEY, _key_ref(job, PUBLIC_KEY)),
        (settings.CURVE_SECRET_KEY, _key_ref(job, SECRET_KEY)),
        (settings.UI_READ_ACCESS, spec.ui.read_access),
        (settings.UI_CHANGE_ACCESS, spec.ui.change_access),
        (settings.UI_SCRAPE_TOKEN_FILE, SCRAPE_TOKEN_FILE),
        (settings.UI_TOKEN_GENERATION_FILE, TOKEN_GENERATION_FILE),
        (settings.UI_TLS_CERT, f"{TLS_PATH}/{TLS_CERT_KEY}" if spec.ui.tls else None),
        (settings.UI_TLS_KEY, f"{TLS_PATH}/{TLS_PRIVATE_KEY}" if spec.ui.tls else None),
    ]


def executor_settings(
    job: JobRef, spec: JobSpec, executor_id: int
) -> list[tuple[Setting[Any], EnvValue]]:
    """What the operator sets of the settings `kubestream executor` reads. Its /metrics
    listens on the UI port, the port the readiness probe asks on every pod."""
    return [
        (settings.JOB, job.name),
        (settings.DRIVER_HOST, f"{service_name(job)}.{job.namespace}.svc"),
        (settings.DRIVER_PORT, DRIVER_PORT),
        (settings.EXECUTOR_ID, str(executor_id)),
        (settings.ADVERTISE_HOST, {"fieldRef": {"fieldPath": "status.podIP"}}),
        (settings.BLOCK_PORT, BLOCK_PORT),
        (settings.METRICS_PORT, UI_PORT),
        (settings.KAFKA_CONSUMER_POOL_SIZE, spec.kafka_consumer_pool_size),
        (settings.CURVE_PUBLIC_KEY, _key_ref(job, PUBLIC_KEY)),
        (settings.CURVE_SECRET_KEY, _key_ref(job, SECRET_KEY)),
        (settings.UI_READ_ACCESS, spec.ui.read_access),
        (settings.UI_SCRAPE_TOKEN_FILE, SCRAPE_TOKEN_FILE),
        (settings.UI_TOKEN_GENERATION_FILE, TOKEN_GENERATION_FILE),
    ]


def setting_env(values: Sequence[tuple[Setting[Any], EnvValue]]) -> list[dict[str, Any]]:
    """The variables of ``values``, each checked against and formatted by its declaration."""
    env: list[dict[str, Any]] = []
    for setting, value in values:
        if value is None:
            continue  # an empty value would not parse: unset means the runtime's default
        if isinstance(value, dict):
            env.append({"name": setting.env, "valueFrom": value})
        elif setting.secret:
            raise ValueError(f"{setting.env} is secret: set it from a Secret, by reference")
        else:
            env.append({"name": setting.env, "value": setting.format(setting.check(value))})
    return env


def _user_env(spec: JobSpec, pod: PodSettings) -> list[dict[str, Any]]:
    """The pod's own variables from the spec, then the credentials from secretRefs."""
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in pod.env]
    env += [
        {"name": r.env, "valueFrom": {"secretKeyRef": {"name": r.secret_name, "key": r.key}}}
        for r in spec.secret_refs
    ]
    return env


def secret_volumes(mounts: Sequence[SecretMount]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(volume, volumeMount) of each spec.secretMounts entry, read-only, in spec order."""
    pairs = []
    for i, mount in enumerate(mounts):
        source: dict[str, Any] = {"secretName": mount.secret_name, "defaultMode": SECRET_FILE_MODE}
        if mount.items:
            source["items"] = [{"key": key, "path": path} for key, path in mount.items]
        name = f"secret-{i}"
        pairs.append(
            (
                {"name": name, "secret": source},
                {"name": name, "mountPath": mount.mount_path, "readOnly": True},
            )
        )
    return pairs


def _pod(
    job: JobRef,
    spec: JobSpec,
    keys_id: str,
    *,
    name: str,
    role: str,
    pod_settings: PodSettings,
    command: list[str],
    env: list[dict[str, Any]],
    ports: list[dict[str, Any]],
) -> Manifest:
    # The checkpoint claim goes on executors too: their receivers write the
    # write-ahead log there, and a directory source on it is read by the tasks.
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "checkpoint", "persistentVolumeClaim": {"claimName": claim_name(job, spec)}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "checkpoint", "mountPath": CHECKPOINT_PATH},
    ]
    volumes.append(_access_volume(job))
    mounts.append({"name": "access", "mountPath": ACCESS_PATH, "readOnly": True})
    if role == "driver":  # the application reads spec.configuration there, as ssc.conf
        volumes.insert(0, {"name": "config", "configMap": {"name": config_map_name(job)}})
        mounts.insert(0, {"name": "config", "mountPath": CONFIG_PATH, "readOnly": True})
        tls = _tls_volume(job, spec)
        if tls is not None:
            volumes.append(tls)
            mounts.append({"name": "tls", "mountPath": TLS_PATH, "readOnly": True})
    for volume, mount in secret_volumes(spec.secret_mounts):
        volumes.append(volume)
        mounts.append(mount)
    container: dict[str, Any] = {
        "name": role,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command,
        "env": env + _user_env(spec, pod_settings),
        "ports": ports,
        "volumeMounts": mounts,
        "resources": {k: dict(v) for k, v in pod_settings.resources.items() if v},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        # Ready once the UI port answers: the driver binds its ZeroMQ port and an
        # executor its block server before that. Not a TCP probe of those ports:
        # a bare connection fails the CURVE handshake, a logged warning each time.
        # /healthz needs no token (/metrics may).
        "readinessProbe": {"httpGet": _probe(role, spec), "periodSeconds": 5},
    }
    metadata = _metadata(job, name, role)
    if role == "driver" and spec.ui.tls:
        metadata["labels"][UI_SCHEME_LABEL] = "https"
    metadata["annotations"] = {SPEC_HASH_ANNOTATION: spec_hash(spec), KEYS_ANNOTATION: keys_id}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": service_account_name(job),
        "automountServiceAccountToken": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": spec.graceful_stop_seconds,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if pod_settings.node_selector:
        pod_spec["nodeSelector"] = dict(pod_settings.node_selector)
    if pod_settings.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in pod_settings.tolerations]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}


def _tls_volume(job: JobRef, spec: JobSpec) -> dict[str, Any] | None:
    """The UI port's certificate: the user's Secret, or the certificate and key (only)
    of the job's own. No subPath: the kubelet then updates the files on renewal, and
    the driver picks them up without a restart."""
    if spec.ui.tls_secret:
        return {"name": "tls", "secret": {"secretName": spec.ui.tls_secret}}
    if spec.ui.operator_tls:
        items = [{"key": k, "path": k} for k in (TLS_CERT_KEY, TLS_PRIVATE_KEY)]
        return {"name": "tls", "secret": {"secretName": secret_name(job), "items": items}}
    return None


def _probe(role: str, spec: JobSpec) -> dict[str, Any]:
    """/healthz, which needs no token (/metrics and the page may)."""
    if role != "driver":
        return {"path": "/healthz", "port": "ui"}
    scheme = "HTTPS" if spec.ui.tls else "HTTP"
    return {"path": "/healthz", "port": "ui", "scheme": scheme}


def build_driver_pod(job: JobRef, spec: JobSpec, keys_id: str) -> Manifest:
    """The driver: `kubestream driver`, checkpointing to the claim.

    ``keys_id`` (the key Secret's uid) marks which key pair the pod was started
    with, so pods are restarted together if the Secret is ever replaced.
    """
    return _pod(
        job,
        spec,
        keys_id,
        name=driver_pod_name(job),
        role="driver",
        pod_settings=spec.driver,
        command=["kubestream", "driver"],
        env=setting_env(driver_settings(job, spec)),
        ports=[
            {"name": "driver", "containerPort": DRIVER_PORT},
            {"name": "ui", "containerPort": UI_PORT},
        ],
    )


def build_executor_pod(job: JobRef, spec: JobSpec, executor_id: int, keys_id: str) -> Manifest:
    """One executor: `kubestream executor`, connecting to the driver's Service."""
    pod = _pod(
        job,
        spec,
        keys_id,
        name=executor_pod_name(job, executor_id),
        role="executor",
        pod_settings=spec.executor,
        command=["kubestream", "executor"],
        env=setting_env(executor_settings(job, spec, executor_id)),
        ports=[
            {"name": "blocks", "containerPort": BLOCK_PORT},
            {"name": "ui", "containerPort": UI_PORT},
        ],
    )
    pod["metadata"]["labels"][EXECUTOR_ID_LABEL] = str(executor_id)
    return pod
