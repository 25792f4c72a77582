"""The autoscaler on the real control plane with a real driver and executors.

As in test_driver_live: a real ``kubestream driver`` (word count) and executor
processes on a loopback address with the job's keys; the test plays the kubelet.
An idle job on two executors runs far below the down threshold, so the
autoscaler must scale it to one through the drain path, record why, keep its
cooldown across an operator restart, and yield to a ``kubectl scale``.
"""

import json
from typing import Any

import pytest

from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_driver_live import (  # noqa: F401  (start_job_processes is a fixture)
    Start,
    driver_status,
    events,
    job_keys,
    start_job_processes,
)
from tests.operator.test_lifecycle import job_manifest, run_all

pytestmark = pytest.mark.integration


def autoscaler(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.status(namespace, "wc").get("autoscaler") or {}
    return found


def replicas(kube: Kube, namespace: str) -> int:
    return int((kube.job(namespace, "wc") or {})["spec"]["executors"]["replicas"])


def test_autoscaler_drains_an_idle_executor_keeps_its_cooldown_and_yields_to_kubectl_scale(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    start_job_processes: Start,  # noqa: F811
) -> None:
    kube.apply(
        namespace,
        job_manifest(
            gracefulStopTimeoutSeconds=60,
            executors={"replicas": 2, "min": 1, "max": 4},
            autoscaling={
                "enabled": True,
                "stabilizationWindowSeconds": 2,
                "scaleDownCooldownSeconds": 600,
            },
        ),
    )
    host, executors = start_job_processes(job_keys(kube, namespace, "wc"), ["0", "1"])
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    run_all(kube, namespace)
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)
    wait_for(
        lambda: len(driver_status(host).get("executors") or []) == 2,
        "both executors registered",
        timeout=90,  # two Python processes starting on a loaded machine
    )
    action = wait_for(
        lambda: autoscaler(kube, namespace).get("lastAction"),
        "the autoscaler's first action",
        timeout=90,
    )
    assert (action["action"], action["reason"], action["from"], action["to"]) == (
        "down",
        "UNDERLOAD",
        2,
        1,
    )
    assert action["applied"] is True
    assert replicas(kube, namespace) == 1
    annotations = (kube.job(namespace, "wc") or {})["metadata"]["annotations"]
    assert annotations["kubestream.io/autoscaler-replicas"] == "1"
    # The existing drain path: the driver drains executor 1, then its pod goes.
    wait_for(
        lambda: driver_status(host).get("decommissions") == {"1": "decommissioned"},
        "the driver to decommission executor 1",
    )
    assert executors["1"].wait(timeout=30) == 0
    wait_for(lambda: list(kube.pods(namespace, "executor")) == ["wc-executor-0"], "1 executor")
    # The Events follow the pod's deletion in the same pass, a moment later.
    found = wait_for(
        lambda: (e := events(kube, namespace, "wc")).get("ExecutorRemoved") and e, "the Events"
    )
    assert found["AutoscaledDown"].startswith("2 -> 1 executors (UNDERLOAD): processing ratio")
    assert (
        found["ExecutorRemoved"]
        == "scaled down: deleting executor pod wc-executor-1 after draining"
    )
    evaluation = wait_for(
        lambda: (
            (e := autoscaler(kube, namespace).get("lastEvaluation") or {}).get("reason") == "AT_MIN"
            and e
        ),
        "an evaluation at executors.min",
    )
    assert evaluation["inputs"]["activeExecutors"] == 1
    assert evaluation["inputs"]["processingRatio"] < 0.3

    # A new operator process reads the cooldown from the job's status.
    kept = autoscaler(kube, namespace)["state"]["lastScaleDown"]
    operator.stop()
    before = autoscaler(kube, namespace)["lastEvaluation"]["time"]
    operator.start()
    wait_for(
        lambda: autoscaler(kube, namespace)["lastEvaluation"]["time"] > before,
        "an evaluation by the restarted operator",
    )
    assert autoscaler(kube, namespace)["state"]["lastScaleDown"] == kept

    # kubectl scale pins the count: the autoscaler records, and changes nothing.
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=2")
    wait_for(lambda: autoscaler(kube, namespace).get("pinned") is True, "the pin")
    # Events are posted after the status in the same pass.
    wait_for(lambda: "AutoscalerPinned" in events(kube, namespace, "wc"), "AutoscalerPinned")
    pinned_at = autoscaler(kube, namespace)["lastEvaluation"]["time"]
    wait_for(
        lambda: autoscaler(kube, namespace)["lastEvaluation"]["time"] > pinned_at,
        "an evaluation after the pin",
    )
    assert replicas(kube, namespace) == 2
    assert executors["0"].poll() is None

    # Turning autoscaling off forgets its state; the count stays where it is.
    kube.patch_spec(namespace, "wc", {"autoscaling": {"enabled": False}})
    wait_for(lambda: "autoscaler" not in kube.status(namespace, "wc"), "status.autoscaler cleared")
    assert replicas(kube, namespace) == 2


def refused(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str:
    """kubectl apply's complaint about ``manifest``; fails if the API server takes it."""
    result = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False, stdin=json.dumps(manifest)
    )
    assert result.returncode != 0, "the API server accepted it"
    return result.stderr


def test_api_server_checks_and_defaults_the_autoscaling_policy(kube: Kube, namespace: str) -> None:
    assert 'spec.autoscaling.mode: Unsupported value: "Sometimes"' in refused(
        kube, namespace, job_manifest(autoscaling={"mode": "Sometimes"})
    )
    assert (
        "autoscaling.targetUtilization must lie between scaleDownThreshold and scaleUpThreshold"
        in refused(kube, namespace, job_manifest(autoscaling={"targetUtilization": 0.9}))
    )
    assert kube.job(namespace, "wc") is None
    kube.apply(namespace, job_manifest(autoscaling={"enabled": True}))
    policy = (kube.job(namespace, "wc") or {})["spec"]["autoscaling"]
    assert policy["mode"] == "Act"
    assert (policy["catchUpSeconds"], policy["maxStepPercent"]) == (300, 100)
    assert "targetUtilization" not in policy  # 0.7 inside the default band, or its middle
