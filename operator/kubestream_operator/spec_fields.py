"""Which StreamingJob spec fields are runtime settings, and which the operator acts on.

Every field of the CRD's spec is in exactly one table; the settings contract test
(tests/operator/test_settings_contract.py) fails when a field is in none, when a
setting's CRD bounds, type or default differ from its declaration in
`kubestream.settings`, or when a setting a pod's command reads is neither set by
`manifests` nor listed in `LEFT_TO_RUNTIME`.
"""

from collections.abc import Mapping
from typing import Any

from kubestream import settings
from kubestream.settings import Reader, Setting

SPEC_SETTINGS: Mapping[str, Setting[Any]] = {
    "batchIntervalSeconds": settings.BATCH_INTERVAL,
    "checkpoint.intervalSeconds": settings.CHECKPOINT_INTERVAL,
    "reliability.writeAheadLog": settings.WRITE_AHEAD_LOG,
    "flowControl.backpressure": settings.BACKPRESSURE,
    "flowControl.maxRatePerReceiver": settings.MAX_RATE,
    "flowControl.blockIntervalSeconds": settings.BLOCK_INTERVAL,
    "monitoring.stallTimeoutSeconds": settings.STALL_TIMEOUT,
    "monitoring.taskDurationThresholdSeconds": settings.TASK_DURATION_THRESHOLD,
    "ui.readAccess": settings.UI_READ_ACCESS,
    "ui.changeAccess": settings.UI_CHANGE_ACCESS,
    "executors.kafkaConsumerPoolSize": settings.KAFKA_CONSUMER_POOL_SIZE,
}
"""Fields that are a runtime setting as they are: same type, default and bounds."""

DERIVED_SETTINGS: Mapping[str, Setting[Any]] = {
    "application.file": settings.APP,
    "application.module": settings.APP,
    "application.function": settings.APP,
    "application.arguments": settings.APP_ARGS,
    "configuration": settings.CONFIG,
    "gracefulStopTimeoutSeconds": settings.GRACEFUL_TIMEOUT,
    "ui.tls.secretName": settings.UI_TLS_CERT,
}
"""Fields a setting is computed from: the application target, its shell-quoted
arguments, the ConfigMap directory, the driver's deadline inside the grace period, the
mounted certificate (its key, settings.UI_TLS_KEY, comes with it)."""

_POD_FIELDS = (
    "resources.requests",
    "resources.limits",
    "env",
    "nodeSelector",
    "tolerations",
)

OPERATOR_FIELDS: frozenset[str] = frozenset(
    {
        "image",
        "imagePullPolicy",
        "secretRefs",
        "secretMounts",
        "suspend",
        "executors.replicas",
        "executors.min",
        "executors.max",
        "checkpoint.size",
        "checkpoint.storageClassName",
        "checkpoint.existingClaim",
        "checkpoint.retainOnDelete",
        "restartPolicy.type",
        "restartPolicy.backoffSeconds",
        "restartPolicy.maxBackoffSeconds",
        "restartPolicy.limit",
        "autoscaling.enabled",
        "autoscaling.scaleUpThreshold",
        "autoscaling.scaleDownThreshold",
        "autoscaling.stabilizationWindowSeconds",
        "autoscaling.scaleUpCooldownSeconds",
        "autoscaling.scaleDownCooldownSeconds",
        "autoscaling.maxStep",
        "autoscaling.maxStepPercent",
        "autoscaling.targetUtilization",
        "autoscaling.catchUpSeconds",
        "autoscaling.mode",
        *(f"{pod}.{field}" for pod in ("driver", "executors") for field in _POD_FIELDS),
    }
)
"""Fields the operator acts on itself: the pods' shape and count, the claim, restarts,
scaling and suspension. None of them reaches the runtime as a setting."""

LEFT_TO_RUNTIME: Mapping[Reader, frozenset[Setting[Any]]] = {
    Reader.DRIVER: frozenset(
        {
            settings.HOST,  # 0.0.0.0: the pod's every address
            settings.DURATION,  # a job runs until stopped
            settings.ON_BATCH_FAILURE,
            settings.HEARTBEAT_TIMEOUT,
            settings.UI_IDLE_TIMEOUT,
            settings.UI_MAX_CONNECTIONS,
            settings.UI_SCRAPE_TOKEN,  # from a file instead, which follows rotations
            settings.STATE_KEY,  # derived from the CURVE secret key in the job's Secret
            settings.LOG_LEVEL,
            settings.LOG_FORMAT,
        }
    ),
    Reader.EXECUTOR: frozenset(
        {
            settings.BLOCK_HOST,  # 0.0.0.0: the pod's every address
            settings.CORES,
            settings.HEARTBEAT_INTERVAL,
            settings.DRIVER_TIMEOUT,
            settings.PARENT_PID,  # local mode only
            settings.UI_SCRAPE_TOKEN,  # from a file instead, which follows rotations
            settings.STATE_KEY,  # derived from the CURVE secret key in the job's Secret
            settings.LOG_LEVEL,
            settings.LOG_FORMAT,
        }
    ),
}
"""Settings a pod's command reads that the operator leaves at the runtime's default."""
