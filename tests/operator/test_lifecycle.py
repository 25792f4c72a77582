"""The operator against a real kube-apiserver: children, status, failures, scaling,
suspend, spec changes and deletion. Each test gets its own namespace and operator."""

from pathlib import Path
from typing import Any

import pytest

from tests.operator.harness import Kube, OperatorProcess, wait_for


def job_manifest(name: str = "wc", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image": "registry.example.com/team/wordcount:1.0",
        "application": {"module": "wordcount", "function": "build"},
        "executors": {"replicas": 2, "min": 1, "max": 4},
        "restartPolicy": {"backoffSeconds": 1, "maxBackoffSeconds": 2, "limit": 2},
        "gracefulStopTimeoutSeconds": 5,
    }
    body.update(spec)
    return {
        "apiVersion": "kubestream.io/v1alpha1",
        "kind": "StreamingJob",
        "metadata": {"name": name},
        "spec": body,
    }


def phase_is(kube: Kube, ns: str, name: str, phase: str) -> bool:
    return kube.status(ns, name).get("phase") == phase


def run_all(kube: Kube, ns: str) -> None:
    """Play the kubelet: every pod of the job goes Running."""
    for pod in kube.pods(ns).values():
        if pod.status.phase != "Running":
            kube.act_as_kubelet_set_pod_phase(ns, pod.metadata.name, "Running")


def test_job_gets_every_child_owned_and_status_fills_in(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.kubectl("apply", "-n", namespace, "-f", "examples/wordcount-job.yaml")
    job = wait_for(lambda: kube.job(namespace, "wordcount"), "the job")
    uid = job["metadata"]["uid"]
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    core = kube.core
    children = [
        core.read_namespaced_secret("wordcount-curve", namespace),
        core.read_namespaced_service_account("wordcount-job", namespace),
        core.read_namespaced_config_map("wordcount-config", namespace),
        core.read_namespaced_service("wordcount-driver", namespace),
        kube.networking.read_namespaced_network_policy("wordcount-pods", namespace),
        *kube.pods(namespace).values(),
    ]
    for child in children:
        owners = child.metadata.owner_references or []
        assert [(o.kind, o.uid, o.controller) for o in owners] == [("StreamingJob", uid, True)]
    claim = core.read_namespaced_persistent_volume_claim("wordcount-checkpoint", namespace)
    assert not claim.metadata.owner_references  # retainOnDelete defaults to true
    wait_for(lambda: phase_is(kube, namespace, "wordcount", "Starting"), "phase Starting")
    run_all(kube, namespace)
    wait_for(lambda: phase_is(kube, namespace, "wordcount", "Running"), "phase Running")
    status = wait_for(
        lambda: (s := kube.status(namespace, "wordcount")).get("readyExecutors") == 2 and s,
        "2 ready executors",
    )
    assert status["executors"] == "2/2"
    assert status["observedGeneration"] == job["metadata"]["generation"]
    assert kube.condition(namespace, "wordcount", "Ready")["status"] == "True"
    table = kube.kubectl("get", "sj", "-n", namespace).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "PHASE",
        "EXECUTORS",
        "BATCH",
        "DELAY",
        "LAST",
        "BATCH",
        "AGE",
    ]
    assert table[1].split()[:3] == ["wordcount", "Running", "2/2"]
    reasons = kube.event_reasons(namespace, "wordcount")
    assert {"DriverCreated", "ExecutorCreated", "Starting", "Running"} <= set(reasons)


def test_failed_driver_restarts_with_backoff_then_job_fails_at_limit(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(
        namespace,
        job_manifest(restartPolicy={"backoffSeconds": 2, "maxBackoffSeconds": 4, "limit": 2}),
    )
    for attempt in (1, 2):
        driver = wait_for(lambda: kube.pods(namespace, "driver").get("wc-driver"), "driver pod")
        kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Failed", exit_code=3)
        status = wait_for(
            lambda n=attempt: (
                (s := kube.status(namespace, "wc")).get("driverRestarts") == n
                and s.get("phase") == "Recovering"
                and s
            ),
            f"driver failure {attempt} counted, phase Recovering",
        )
        degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
        assert degraded["reason"] == "DriverRestarting"
        assert "exited with code 3" in degraded["message"]
        new = wait_for(
            lambda old=driver.metadata.uid: (
                (p := kube.pods(namespace, "driver").get("wc-driver"))
                and p.metadata.uid != old
                and p
            ),
            f"driver recreated after failure {attempt}",
        )
        assert new.metadata.uid != driver.metadata.uid
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Failed", exit_code=3)
    wait_for(lambda: phase_is(kube, namespace, "wc", "Failed"), "phase Failed after the limit")
    degraded = kube.condition(namespace, "wc", "Degraded")
    assert degraded["status"] == "True"
    assert degraded["reason"] == "DriverFailed"
    assert "exited with code 3" in degraded["message"]
    assert "restartPolicy.limit is 2" in degraded["message"]
    wait_for(lambda: not kube.pods(namespace), "pods of the failed job removed")
    reasons = kube.event_reasons(namespace, "wc")
    assert reasons.count("DriverFailed") == 3
    assert "Failed" in reasons


def test_deleted_driver_and_lost_executor_are_replaced(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    run_all(kube, namespace)
    wait_for(lambda: phase_is(kube, namespace, "wc", "Running"), "phase Running")
    before = {n: p.metadata.uid for n, p in kube.pods(namespace).items()}
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-executor-1", "Failed", exit_code=137)
    kube.core.delete_namespaced_pod("wc-executor-0", namespace)
    kube.core.delete_namespaced_pod("wc-driver", namespace)

    def all_new() -> bool:
        now = {n: p.metadata.uid for n, p in kube.pods(namespace).items()}
        return set(now) == set(before) and all(now[n] != before[n] for n in now)

    wait_for(all_new, "driver and both executors replaced by new pods")
    assert kube.status(namespace, "wc")["driverRestarts"] == 1
    assert "ExecutorLost" in kube.event_reasons(namespace, "wc")


def test_scale_subresource_changes_executor_count_within_bounds(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace, "executor")) == 2, "2 executors")
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=4")
    wait_for(
        lambda: sorted(kube.pods(namespace, "executor")) == [f"wc-executor-{i}" for i in range(4)],
        "4 executors",
    )
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=1")
    wait_for(lambda: list(kube.pods(namespace, "executor")) == ["wc-executor-0"], "1 executor")
    refused = kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=9", check=False)
    assert refused.returncode != 0
    assert "executors.replicas must lie between executors.min and executors.max" in refused.stderr
    scale = kube.custom.get_namespaced_custom_object_scale(
        "kubestream.io", "v1alpha1", namespace, "streamingjobs", "wc"
    )
    assert scale["spec"]["replicas"] == 1
    assert scale["status"]["selector"] == "kubestream.io/job=wc,kubestream.io/role=executor"


def test_suspend_stops_pods_keeps_claim_and_resume_restarts(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    kube.patch_spec(namespace, "wc", {"suspend": True})
    wait_for(lambda: phase_is(kube, namespace, "wc", "Suspended"), "phase Suspended")
    assert kube.pods(namespace) == {}
    kube.core.read_namespaced_persistent_volume_claim("wc-checkpoint", namespace)
    kube.patch_spec(namespace, "wc", {"suspend": False})
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods after resume")
    wait_for(lambda: phase_is(kube, namespace, "wc", "Starting"), "phase Starting")
    reasons = kube.event_reasons(namespace, "wc")
    assert reasons.count("Suspended") == 1
    assert reasons.count("Starting") == 2


def test_spec_change_restarts_pods_on_the_same_checkpoint_claim(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    old = {n: p.metadata.uid for n, p in kube.pods(namespace).items()}
    kube.patch_spec(namespace, "wc", {"image": "registry.example.com/team/wordcount:2.0"})

    def restarted() -> bool:
        pods = kube.pods(namespace)
        return len(pods) == 3 and all(
            p.metadata.uid != old.get(n) and p.spec.containers[0].image.endswith("wordcount:2.0")
            for n, p in pods.items()
        )

    wait_for(restarted, "all pods recreated with the new image")
    driver = kube.pods(namespace, "driver")["wc-driver"]
    claims = [
        v.persistent_volume_claim.claim_name
        for v in driver.spec.volumes
        if v.persistent_volume_claim
    ]
    assert claims == ["wc-checkpoint"]
    assert "SpecChanged" in kube.event_reasons(namespace, "wc")
    assert kube.status(namespace, "wc")["driverRestarts"] == 0


@pytest.mark.parametrize("retain", [True, False])
def test_deletion_stops_pods_and_garbage_collection_removes_everything(
    kube: Kube, namespace: str, operator: OperatorProcess, retain: bool
) -> None:
    kube.apply(namespace, job_manifest(checkpoint={"retainOnDelete": retain}))
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    job = kube.job(namespace, "wc") or {}
    assert "kubestream.io/graceful-stop" in job["metadata"]["finalizers"]
    kube.kubectl("delete", "-n", namespace, "sj/wc", "--wait=true", "--timeout=60s")
    core = kube.core

    def leftovers() -> list[str]:
        kinds = {
            "pod": core.list_namespaced_pod,
            "secret": core.list_namespaced_secret,
            "configmap": core.list_namespaced_config_map,
            "service": core.list_namespaced_service,
            "serviceaccount": core.list_namespaced_service_account,
            "claim": core.list_namespaced_persistent_volume_claim,
            "networkpolicy": kube.networking.list_namespaced_network_policy,
        }
        return sorted(
            f"{kind}/{obj.metadata.name}"
            for kind, lister in kinds.items()
            for obj in lister(namespace, label_selector="kubestream.io/job=wc").items
        )

    expected = ["claim/wc-checkpoint"] if retain else []
    last: list[list[str]] = []

    def only_expected_left() -> bool:
        last.append(leftovers())
        return last[-1] == expected

    wait_for(only_expected_left, f"only {expected} left (last: {last[-1:]})", timeout=90)


def test_deletion_gives_the_driver_its_graceful_stop_time_before_the_executors(
    kube: Kube, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    node = f"node-{namespace}"
    kube.core.create_node({"metadata": {"name": node}})
    # At DEBUG the finalizer logs each look at the pods while it waits.
    operator = OperatorProcess(
        operator_kubeconfig, namespace, tmp_path / "operator.log", "--log-level", "DEBUG"
    )
    operator.start()
    try:
        kube.apply(namespace, job_manifest(gracefulStopTimeoutSeconds=7))
        wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
        for name in kube.pods(namespace):
            kube.act_as_scheduler_bind(namespace, name, node)
        kube.kubectl("delete", "-n", namespace, "sj/wc", "--wait=false")

        def terminating() -> dict[str, int | None]:
            pods = kube.core.list_namespaced_pod(namespace).items
            return {
                p.metadata.name: p.metadata.deletion_grace_period_seconds
                for p in pods
                if p.metadata.deletion_timestamp
            }

        assert wait_for(terminating, "the driver terminating") == {"wc-driver": 7}
        wait_for(
            lambda: operator.log.read_text().count("waiting for the job's pods to stop") >= 3,
            "the deletion handler to look again while the driver stops",
        )
        assert terminating() == {"wc-driver": 7}, "executors must outlive the stopping driver"
        assert kube.job(namespace, "wc") is not None, "the finalizer keeps the job meanwhile"
        kube.act_as_kubelet_finish_termination(namespace, "wc-driver")
        executors = wait_for(
            lambda: (t := terminating()) and set(t) == {"wc-executor-0", "wc-executor-1"} and t,
            "the executors terminating once the driver is gone",
        )
        assert set(executors.values()) == {7}
        for name in executors:
            kube.act_as_kubelet_finish_termination(namespace, name)
        wait_for(lambda: kube.job(namespace, "wc") is None, "the job gone")
        errors = [line for line in operator.log.read_text().splitlines() if " ERROR " in line]
        assert errors == [], "a normal wait is no error"
    finally:
        operator.stop()
        kube.core.delete_node(node)
