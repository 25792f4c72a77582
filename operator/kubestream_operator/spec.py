"""The StreamingJob spec as typed, validated values.

The CRD schema already refuses most bad input; this module re-checks what the
reconciler relies on (so a job created before a schema change cannot crash it)
and checks what a schema cannot, such as the image reference. Every error names
the field. Called by the reconciler before it plans anything.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kubestream import settings
from kubestream.settings import Setting

# A docker reference: optional registry host[:port], path components, then
# a tag and/or a digest (distribution/reference grammar, simplified).
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*:[0-9a-fA-F]{32,})?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# A ConfigMap key, which becomes a file name on the driver (Kubernetes' IsConfigMapKey).
_CONFIG_KEY = re.compile(r"^(?!\.\.)(?!\.$)[-._a-zA-Z0-9]{1,253}$")
# A Secret's name (a DNS-1123 subdomain).
_SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
RESERVED_PATHS = ("/tmp", "/checkpoint", "/etc/kubestream")
"""Directories the operator mounts itself: a Secret may go neither there, below nor above."""


class SpecError(ValueError):
    """A spec field the operator cannot act on; ``field`` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"spec.{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class PodSettings:
    """Settings shared by the driver and executor pods."""

    resources: Mapping[str, Mapping[str, str]]
    env: tuple[tuple[str, str], ...]
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class SecretRef:
    """An environment variable read from a key of a Secret."""

    env: str
    secret_name: str
    key: str


@dataclass(frozen=True)
class SecretMount:
    """A Secret mounted read-only as files into the driver and every executor: all its
    keys, or only ``items`` as (key, relative path) pairs, under ``mount_path``."""

    secret_name: str
    mount_path: str
    items: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Autoscaling:
    """Autoscaling policy (kubestream_operator.autoscaler); ``mode`` is Act or Recommend."""

    enabled: bool
    scale_up_threshold: float
    scale_down_threshold: float
    stabilization_window_seconds: int
    scale_up_cooldown_seconds: int
    scale_down_cooldown_seconds: int
    max_step: int
    mode: str = "Act"
    target_utilization: float = 0.7
    catch_up_seconds: int = 300
    max_step_percent: int = 100


@dataclass(frozen=True)
class Checkpoint:
    """Where checkpoints live (a claim the operator creates, or an existing one) and how
    often state is written there; ``None`` leaves the interval to the runtime."""

    size: str
    storage_class: str | None
    existing_claim: str | None
    retain_on_delete: bool
    interval_seconds: float | None


@dataclass(frozen=True)
class Reliability:
    """Whether receivers log blocks on the checkpoint volume before acknowledging them."""

    write_ahead_log: bool


@dataclass(frozen=True)
class Monitoring:
    """When the driver reports a batch stalled and a task slow (seconds)."""

    stall_timeout: float
    task_duration_threshold: float


@dataclass(frozen=True)
class FlowControl:
    """How fast inputs are read: an adaptive cap, a fixed one (``None``: none), or both; and
    how often receivers cut blocks (``None``: the runtime's default)."""

    backpressure: bool
    max_rate_per_receiver: int | None
    block_interval: float | None


@dataclass(frozen=True)
class UIAccess:
    """Who may read and change the job through the driver's UI port, and its certificate:
    the name of a kubernetes.io/tls Secret, or ``operator_tls``: one the operator makes
    (kubestream_operator.certificates). Neither: plain HTTP."""

    read_access: str
    change_access: str
    tls_secret: str | None
    operator_tls: bool = False

    @property
    def tls(self) -> bool:
        """Whether the UI port speaks HTTPS."""
        return self.operator_tls or self.tls_secret is not None


@dataclass(frozen=True)
class RestartPolicy:
    """When the driver is recreated, and how long to wait between attempts."""

    type: str
    backoff_seconds: int
    max_backoff_seconds: int
    limit: int


@dataclass(frozen=True)
class JobSpec:
    """Everything the operator needs from a StreamingJob's spec."""

    image: str
    image_pull_policy: str
    app: str
    app_args: tuple[str, ...]
    batch_interval: float
    configuration: Mapping[str, str]
    secret_refs: tuple[SecretRef, ...]
    secret_mounts: tuple[SecretMount, ...]
    driver: PodSettings
    executor: PodSettings
    replicas: int
    min_executors: int
    max_executors: int
    autoscaling: Autoscaling
    checkpoint: Checkpoint
    reliability: Reliability
    flow_control: FlowControl
    monitoring: Monitoring
    ui: UIAccess
    restart: RestartPolicy
    suspend: bool
    graceful_stop_seconds: int
    kafka_consumer_pool_size: int | None = None


def _obj(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(field, "must be an object")
    return value


def _str(spec: Mapping[str, Any], key: str, field: str, default: str | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str) or not value:
        raise SpecError(field, "must be a non-empty string")
    return value


def _num(
    spec: Mapping[str, Any],
    key: str,
    field: str,
    default: float | None,
    bounds: tuple[float, float],
) -> float:
    lo, hi = bounds
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(field, "must be a number")
    if not lo <= value <= hi:
        raise SpecError(field, f"must be between {lo:g} and {hi:g}, got {value:g}")
    return float(value)


def _int(
    spec: Mapping[str, Any], key: str, field: str, default: int | None, bounds: tuple[int, int]
) -> int:
    lo, hi = bounds
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, "must be an integer")
    if not lo <= value <= hi:
        raise SpecError(field, f"must be between {lo} and {hi}, got {value}")
    return value


def _declared(spec: Mapping[str, Any], key: str, field: str, setting: Setting[Any]) -> Any:
    """A field that is a runtime setting: its type, default and bounds are the setting's
    (`kubestream.settings`), so the operator accepts exactly what the runtime does."""
    value = spec.get(key, setting.default)
    if value is None:
        return None
    if setting.kind is bool:
        if not isinstance(value, bool):
            raise SpecError(field, "must be true or false")
    elif setting.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(field, "must be an integer")
    elif setting.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(field, "must be a number")
        value = float(value)
    try:
        return setting.check(value)
    except ValueError as exc:
        raise SpecError(field, str(exc)) from None


def _bool(spec: Mapping[str, Any], key: str, field: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(field, "must be true or false")
    return value


def _pod_settings(raw: Any, field: str) -> PodSettings:
    spec = _obj(raw, field)
    resources = _obj(spec.get("resources"), f"{field}.resources")
    parsed: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        values = _obj(resources.get(kind), f"{field}.resources.{kind}")
        parsed[kind] = {str(k): str(v) for k, v in values.items()}
    env = []
    for i, item in enumerate(spec.get("env") or []):
        entry = _obj(item, f"{field}.env[{i}]")
        name = _str(entry, "name", f"{field}.env[{i}].name")
        if not _ENV_NAME.match(name):
            raise SpecError(f"{field}.env[{i}].name", f"{name!r} is not a valid variable name")
        if name.startswith(settings.ENV_PREFIX):
            raise SpecError(
                f"{field}.env[{i}].name", "KUBESTREAM_* variables are set by the operator"
            )
        env.append((name, str(entry.get("value", ""))))
    selector = _obj(spec.get("nodeSelector"), f"{field}.nodeSelector")
    tolerations = spec.get("tolerations") or []
    if not isinstance(tolerations, list):
        raise SpecError(f"{field}.tolerations", "must be a list")
    return PodSettings(
        resources=parsed,
        env=tuple(env),
        node_selector={str(k): str(v) for k, v in selector.items()},
        tolerations=tuple(_obj(t, f"{field}.tolerations[{i}]") for i, t in enumerate(tolerations)),
    )


def _application(raw: Any) -> tuple[str, tuple[str, ...]]:
    app = _obj(raw, "application")
    if ("file" in app) == ("module" in app):
        raise SpecError("application", "set exactly one of application.file and application.module")
    where = "file" if "file" in app else "module"
    target = _str(app, where, f"application.{where}")
    function = _str(app, "function", "application.function")
    args = app.get("arguments") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SpecError("application.arguments", "must be a list of strings")
    return f"{target}:{function}", tuple(args)


def _configuration(raw: Any) -> dict[str, str]:
    config = _obj(raw, "configuration")
    for key in config:
        if not _CONFIG_KEY.match(str(key)):
            raise SpecError(
                f"configuration.{key}",
                "a key is letters, digits, '-', '_' and '.', not starting with '..' "
                "(it names a file on the driver)",
            )
    return {str(k): str(v) for k, v in config.items()}


def _secret_refs(raw: Any) -> tuple[SecretRef, ...]:
    if not isinstance(raw, list):
        raise SpecError("secretRefs", "must be a list")
    refs = []
    for i, item in enumerate(raw):
        entry = _obj(item, f"secretRefs[{i}]")
        refs.append(
            SecretRef(
                env=_str(entry, "env", f"secretRefs[{i}].env"),
                secret_name=_str(entry, "secretName", f"secretRefs[{i}].secretName"),
                key=_str(entry, "key", f"secretRefs[{i}].key"),
            )
        )
    return tuple(refs)


def _reserved(path: str) -> str | None:
    """The operator's own directory ``path`` would be, lie in or hide, if any."""
    for own in RESERVED_PATHS:
        if path == own or path.startswith(own + "/") or own.startswith(path.rstrip("/") + "/"):
            return own
    return None


def _relative_path(value: str) -> bool:
    parts = value.split("/")
    return not value.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _secret_mounts(raw: Any) -> tuple[SecretMount, ...]:
    if not isinstance(raw, list):
        raise SpecError("secretMounts", "must be a list")
    mounts: list[SecretMount] = []
    for i, item in enumerate(raw):
        f = f"secretMounts[{i}]"
        entry = _obj(item, f)
        name = _str(entry, "secretName", f + ".secretName")
        if len(name) > 253 or not _SECRET_NAME.match(name):
            raise SpecError(f + ".secretName", f"{name!r} is not a Secret name")
        path = _str(entry, "mountPath", f + ".mountPath")
        if not path.startswith("/") or not _relative_path(path[1:]):
            raise SpecError(
                f + ".mountPath",
                f"{path!r} must be an absolute directory path without '.', '..' or '//'",
            )
        own = _reserved(path)
        if own is not None:
            raise SpecError(f + ".mountPath", f"{path!r} would hide {own}, which the job uses")
        if any(m.mount_path == path for m in mounts):
            raise SpecError(f + ".mountPath", f"{path!r} is already used by another entry")
        items = []
        for j, pair in enumerate(entry.get("items") or []):
            it = _obj(pair, f"{f}.items[{j}]")
            key = _str(it, "key", f"{f}.items[{j}].key")
            rel = _str(it, "path", f"{f}.items[{j}].path", key)
            if not _relative_path(rel):
                raise SpecError(
                    f"{f}.items[{j}].path", f"{rel!r} must be a relative path without '..'"
                )
            items.append((key, rel))
        mounts.append(SecretMount(name, path, tuple(items)))
    return tuple(mounts)


def _autoscaling(raw: Any) -> Autoscaling:
    a = _obj(raw, "autoscaling")
    f = "autoscaling."
    policy = Autoscaling(
        enabled=_bool(a, "enabled", f + "enabled", False),
        scale_up_threshold=_num(a, "scaleUpThreshold", f + "scaleUpThreshold", 0.8, (0.01, 10)),
        scale_down_threshold=_num(a, "scaleDownThreshold", f + "scaleDownThreshold", 0.3, (0, 10)),
        stabilization_window_seconds=_int(
            a, "stabilizationWindowSeconds", f + "stabilizationWindowSeconds", 60, (0, 3600)
        ),
        scale_up_cooldown_seconds=_int(
            a, "scaleUpCooldownSeconds", f + "scaleUpCooldownSeconds", 30, (0, 3600)
        ),
        scale_down_cooldown_seconds=_int(
            a, "scaleDownCooldownSeconds", f + "scaleDownCooldownSeconds", 120, (0, 3600)
        ),
        max_step=_int(a, "maxStep", f + "maxStep", 2, (1, 100)),
        mode=_str(a, "mode", f + "mode", "Act"),
        catch_up_seconds=_int(a, "catchUpSeconds", f + "catchUpSeconds", 300, (10, 86400)),
        max_step_percent=_int(a, "maxStepPercent", f + "maxStepPercent", 100, (0, 1000)),
    )
    if policy.mode not in ("Act", "Recommend"):
        raise SpecError(f + "mode", f"must be Act or Recommend, got {policy.mode!r}")
    down, up = policy.scale_down_threshold, policy.scale_up_threshold
    if down >= up:
        raise SpecError(f + "scaleDownThreshold", "must be below autoscaling.scaleUpThreshold")
    # Without a target: 0.7 (Flink's default) when it lies inside the band, else its middle.
    default_target = 0.7 if down < 0.7 < up else (down + up) / 2
    target = _num(a, "targetUtilization", f + "targetUtilization", default_target, (0.01, 10))
    if not down < target < up:
        raise SpecError(
            f + "targetUtilization",
            f"must lie between scaleDownThreshold ({down:g}) and scaleUpThreshold ({up:g}), "
            f"got {target:g}",
        )
    return replace(policy, target_utilization=target)


def _checkpoint(raw: Any) -> Checkpoint:
    c = _obj(raw, "checkpoint")
    existing = c.get("existingClaim")
    storage_class = c.get("storageClassName")
    if existing is not None and storage_class is not None:
        raise SpecError(
            "checkpoint.storageClassName", "cannot be set together with checkpoint.existingClaim"
        )
    return Checkpoint(
        size=str(c.get("size", "1Gi")),
        storage_class=_str(c, "storageClassName", "checkpoint.storageClassName")
        if storage_class is not None
        else None,
        existing_claim=_str(c, "existingClaim", "checkpoint.existingClaim")
        if existing is not None
        else None,
        retain_on_delete=_bool(c, "retainOnDelete", "checkpoint.retainOnDelete", True),
        interval_seconds=_declared(
            c, "intervalSeconds", "checkpoint.intervalSeconds", settings.CHECKPOINT_INTERVAL
        ),
    )


def _flow_control(raw: Any) -> FlowControl:
    f = _obj(raw, "flowControl")
    return FlowControl(
        backpressure=_declared(
            f, "backpressure", "flowControl.backpressure", settings.BACKPRESSURE
        ),
        max_rate_per_receiver=_declared(
            f, "maxRatePerReceiver", "flowControl.maxRatePerReceiver", settings.MAX_RATE
        ),
        block_interval=_declared(
            f, "blockIntervalSeconds", "flowControl.blockIntervalSeconds", settings.BLOCK_INTERVAL
        ),
    )


def _monitoring(raw: Any) -> Monitoring:
    m = _obj(raw, "monitoring")
    return Monitoring(
        stall_timeout=_declared(
            m, "stallTimeoutSeconds", "monitoring.stallTimeoutSeconds", settings.STALL_TIMEOUT
        ),
        task_duration_threshold=_declared(
            m,
            "taskDurationThresholdSeconds",
            "monitoring.taskDurationThresholdSeconds",
            settings.TASK_DURATION_THRESHOLD,
        ),
    )


def _ui(raw: Any) -> UIAccess:
    u = _obj(raw, "ui")
    tls = _obj(u.get("tls"), "ui.tls")
    secret = tls.get("secretName")
    if secret is not None:
        secret = _str(tls, "secretName", "ui.tls.secretName")
    return UIAccess(
        read_access=_declared(u, "readAccess", "ui.readAccess", settings.UI_READ_ACCESS),
        change_access=_declared(u, "changeAccess", "ui.changeAccess", settings.UI_CHANGE_ACCESS),
        tls_secret=secret,
        # ``tls: {}``: HTTPS with the operator's certificate.
        operator_tls=u.get("tls") is not None and secret is None,
    )


def _restart(raw: Any) -> RestartPolicy:
    r = _obj(raw, "restartPolicy")
    kind = r.get("type", "OnFailure")
    if kind not in ("Always", "OnFailure", "Never"):
        raise SpecError("restartPolicy.type", f"must be Always, OnFailure or Never, got {kind!r}")
    policy = RestartPolicy(
        type=kind,
        backoff_seconds=_int(r, "backoffSeconds", "restartPolicy.backoffSeconds", 10, (1, 3600)),
        max_backoff_seconds=_int(
            r, "maxBackoffSeconds", "restartPolicy.maxBackoffSeconds", 300, (1, 86400)
        ),
        limit=_int(r, "limit", "restartPolicy.limit", 5, (0, 1000)),
    )
    if policy.backoff_seconds > policy.max_backoff_seconds:
        raise SpecError("restartPolicy.backoffSeconds", "must not exceed maxBackoffSeconds")
    return policy


def parse_spec(spec: Mapping[str, Any]) -> JobSpec:
    """Typed spec; raises SpecError naming the first field that is wrong."""
    image = _str(spec, "image", "image")
    if not _IMAGE.match(image):
        raise SpecError("image", f"{image!r} is not a valid image reference")
    pull = spec.get("imagePullPolicy", "IfNotPresent")
    if pull not in ("Always", "IfNotPresent", "Never"):
        raise SpecError("imagePullPolicy", "must be Always, IfNotPresent or Never")
    app, args = _application(spec.get("application"))
    interval: float = _declared(
        spec, "batchIntervalSeconds", "batchIntervalSeconds", settings.BATCH_INTERVAL
    )
    executors = _obj(spec.get("executors"), "executors")
    lo = _int(executors, "min", "executors.min", 1, (0, 1000))
    hi = _int(executors, "max", "executors.max", 10, (1, 1000))
    replicas = _int(executors, "replicas", "executors.replicas", 2, (0, 1000))
    if lo > hi:
        raise SpecError("executors.min", "must be less than or equal to executors.max")
    if not lo <= replicas <= hi:
        raise SpecError("executors.replicas", f"must lie between {lo} and {hi}, got {replicas}")
    graceful = _int(spec, "gracefulStopTimeoutSeconds", "gracefulStopTimeoutSeconds", 60, (1, 3600))
    if graceful < interval:
        raise SpecError("gracefulStopTimeoutSeconds", "must be at least batchIntervalSeconds")
    checkpoint = _checkpoint(spec.get("checkpoint"))
    if checkpoint.interval_seconds is not None and checkpoint.interval_seconds < interval:
        raise SpecError("checkpoint.intervalSeconds", "must be at least batchIntervalSeconds")
    reliability = _obj(spec.get("reliability"), "reliability")
    return JobSpec(
        image=image,
        image_pull_policy=pull,
        app=app,
        app_args=args,
        batch_interval=interval,
        configuration=_configuration(spec.get("configuration")),
        secret_refs=_secret_refs(spec.get("secretRefs") or []),
        secret_mounts=_secret_mounts(spec.get("secretMounts") or []),
        driver=_pod_settings(spec.get("driver"), "driver"),
        executor=_pod_settings(executors, "executors"),
        replicas=replicas,
        min_executors=lo,
        max_executors=hi,
        autoscaling=_autoscaling(spec.get("autoscaling")),
        checkpoint=checkpoint,
        reliability=Reliability(
            write_ahead_log=_declared(
                reliability, "writeAheadLog", "reliability.writeAheadLog", settings.WRITE_AHEAD_LOG
            )
        ),
        flow_control=_flow_control(spec.get("flowControl")),
        monitoring=_monitoring(spec.get("monitoring")),
        ui=_ui(spec.get("ui")),
        restart=_restart(spec.get("restartPolicy")),
        suspend=_bool(spec, "suspend", "suspend", False),
        graceful_stop_seconds=graceful,
        kafka_consumer_pool_size=_declared(
            executors,
            "kafkaConsumerPoolSize",
            "executors.kafkaConsumerPoolSize",
            settings.KAFKA_CONSUMER_POOL_SIZE,
        ),
    )
