"""Bad input, missing dependencies, hand-made damage, operator crashes, metrics,
peering and pod permissions, all against the real API server."""

import base64
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubestream_operator import manifests as m
from kubestream_operator.keys import curve_keypair
from kubestream_operator.spec import parse_spec
from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest, phase_is


def refusal(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str:
    result = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False
    )
    assert result.returncode != 0
    return result.stderr


def test_invalid_manifests_are_refused_naming_the_field(kube: Kube, namespace: str) -> None:
    schema = job_manifest(batchIntervalSeconds=0.001, restartPolicy={"type": "Sometimes"})
    del schema["spec"]["image"]
    stderr = refusal(kube, namespace, schema)
    for text in (
        "spec.image: Required value",
        "spec.batchIntervalSeconds: Invalid value: 0.001",
        'spec.restartPolicy.type: Unsupported value: "Sometimes"',
    ):
        assert text in stderr
    rules = job_manifest(
        application={"file": "/app/a.py", "module": "a", "function": "build"},
        executors={"replicas": 9, "min": 3, "max": 2},
        autoscaling={"scaleUpThreshold": 0.2, "scaleDownThreshold": 0.5},
        checkpoint={"existingClaim": "shared", "storageClassName": "fast"},
    )
    stderr = refusal(kube, namespace, rules)
    for text in (
        "spec.application: Invalid value: set exactly one of application.file and application.module",  # noqa: E501
        "spec.executors: Invalid value: executors.min must be less than or equal to executors.max",
        "spec.executors.replicas: Invalid value: executors.replicas must lie between",
        "autoscaling.scaleDownThreshold must be below autoscaling.scaleUpThreshold",
        "checkpoint.storageClassName cannot be set together with checkpoint.existingClaim",
    ):
        assert text in stderr
    assert kube.job(namespace, "wc") is None


def test_malformed_secret_mounts_are_refused_with_the_reason(kube: Kube, namespace: str) -> None:
    cases = {
        "relative": ({"secretName": "tls", "mountPath": "certs"}, "should match '^/'"),
        "dotdot": (
            {"secretName": "tls", "mountPath": "/var/../tmp/x"},
            "mountPath must be an absolute directory path without '.', '..'",
        ),
        "hides": (
            {"secretName": "tls", "mountPath": "/etc"},
            "mountPath must not be, lie inside or contain /tmp, /checkpoint or /etc/kubestream",
        ),
        "inside": (
            {"secretName": "tls", "mountPath": "/checkpoint/tls"},
            "mountPath must not be, lie inside or contain",
        ),
        "name": (
            {"secretName": "Kafka_TLS", "mountPath": "/tls"},
            "spec.secretMounts[0].secretName",
        ),
        "item": (
            {
                "secretName": "tls",
                "mountPath": "/tls",
                "items": [{"key": "k", "path": "a/../../k"}],
            },
            "items[].path must not contain '..'",
        ),
    }
    for what, (entry, text) in cases.items():
        stderr = refusal(kube, namespace, job_manifest(secretMounts=[entry]))
        assert "spec.secretMounts[0]" in stderr, what
        assert text in stderr, (what, stderr)
    twice = [{"secretName": "a", "mountPath": "/tls"}, {"secretName": "b", "mountPath": "/tls"}]
    stderr = refusal(kube, namespace, job_manifest(secretMounts=twice))
    assert 'spec.secretMounts[1]: Duplicate value: {"mountPath":"/tls"}' in stderr
    bad_size = refusal(kube, namespace, job_manifest(executors={"kafkaConsumerPoolSize": 0}))
    assert "spec.executors.kafkaConsumerPoolSize: Invalid value: 0" in bad_size
    assert kube.job(namespace, "wc") is None
    kube.apply(namespace, job_manifest(secretMounts=[{"secretName": "tls", "mountPath": "/tls"}]))
    spec = (kube.job(namespace, "wc") or {})["spec"]
    assert spec["executors"]["kafkaConsumerPoolSize"] == 64
    assert parse_spec(spec).secret_mounts[0].mount_path == "/tls"


def test_reliability_and_flow_control_are_checked_defaulted_and_explained(
    kube: Kube, namespace: str
) -> None:
    schema = job_manifest(
        reliability={"writeAheadLog": "yes"}, flowControl={"maxRatePerReceiver": 0}
    )
    stderr = refusal(kube, namespace, schema)
    for text in (
        "spec.flowControl.maxRatePerReceiver: Invalid value: 0",
        'spec.reliability.writeAheadLog: Invalid value: "string"',
    ):
        assert text in stderr
    rule = job_manifest(batchIntervalSeconds=2, checkpoint={"intervalSeconds": 1})
    assert (
        "spec.checkpoint.intervalSeconds: Invalid value: "
        "checkpoint.intervalSeconds must be at least batchIntervalSeconds"
    ) in refusal(kube, namespace, rule)
    assert kube.job(namespace, "wc") is None
    kube.apply(namespace, job_manifest())
    spec = (kube.job(namespace, "wc") or {})["spec"]
    assert spec["reliability"] == {"writeAheadLog": False}
    assert spec["flowControl"] == {"backpressure": False}
    explained = wait_for(
        lambda: (
            kube.kubectl(
                "explain", "streamingjob.spec.flowControl.maxRatePerReceiver", check=False
            ).stdout
        ),
        "kubectl explain to know the new field",
    )
    assert "Most records per second each receiver" in explained


def test_what_the_schema_cannot_check_becomes_degraded_not_a_crash(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest("badimage", image="Registry/UPPER CASE:tag"))
    kube.apply(
        namespace,
        job_manifest(
            "needs-secret",
            secretRefs=[{"env": "KAFKA_PASSWORD", "secretName": "kafka", "key": "password"}],
        ),
    )
    kube.apply(namespace, job_manifest("badnode", driver={"nodeSelector": {"pool": "not valid!"}}))
    kube.apply(namespace, job_manifest("fine"))
    wait_for(
        lambda: kube.condition(namespace, "badimage", "Degraded").get("reason") == "InvalidSpec",
        "InvalidSpec",
    )
    assert (
        "spec.image: 'Registry/UPPER CASE:tag' is not a valid image reference"
        in kube.condition(namespace, "badimage", "Degraded")["message"]
    )
    wait_for(
        lambda: (
            kube.condition(namespace, "needs-secret", "Degraded").get("reason") == "SecretNotFound"
        ),
        "SecretNotFound",
    )
    message = kube.condition(namespace, "needs-secret", "Degraded")["message"]
    assert "kafka/password" in message
    assert "spec.secretRefs" in message
    wait_for(
        lambda: kube.condition(namespace, "badnode", "Degraded").get("reason") == "ApiError",
        "ApiError",
    )
    assert "nodeSelector" in kube.condition(namespace, "badnode", "Degraded")["message"]
    wait_for(
        lambda: (
            operator.log.read_text().count("reconcile of " + namespace + "/badnode failed") >= 3
        ),
        "several failed passes",
    )
    assert kube.event_reasons(namespace, "badnode").count("ApiError") == 1
    wait_for(lambda: "fine-driver" in kube.pods(namespace), "the valid job still runs")
    assert "needs-secret-driver" not in kube.pods(namespace)
    kube.kubectl(
        "create", "secret", "generic", "kafka", "-n", namespace, "--from-literal=password=hunter2"
    )
    wait_for(lambda: "needs-secret-driver" in kube.pods(namespace), "driver once the secret exists")
    wait_for(
        lambda: kube.condition(namespace, "needs-secret", "Degraded").get("status") == "False",
        "Degraded cleared",
    )
    assert operator.proc is not None and operator.proc.poll() is None
    assert "hunter2" not in operator.log.read_text()


def test_children_deleted_by_hand_come_back(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    for kind in ("service/wc-driver", "configmap/wc-config", "serviceaccount/wc-job"):
        kube.kubectl("delete", "-n", namespace, kind)
    wait_for(
        lambda: (
            kube.kubectl(
                "get",
                "-n",
                namespace,
                "service/wc-driver",
                "configmap/wc-config",
                "serviceaccount/wc-job",
                check=False,
            ).returncode
            == 0
        ),
        "service, configmap and serviceaccount recreated",
    )


def test_a_deleted_key_secret_is_remade_and_every_pod_restarts_with_it(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    old = {n: p.metadata.uid for n, p in kube.pods(namespace).items()}
    kube.kubectl("delete", "-n", namespace, "secret/wc-curve")

    def restarted_with_new_keys() -> bool:
        try:
            uid = kube.core.read_namespaced_secret("wc-curve", namespace).metadata.uid
        except Exception:
            return False
        pods = kube.pods(namespace)
        return len(pods) == 3 and all(
            p.metadata.uid != old[n] and p.metadata.annotations[m.KEYS_ANNOTATION] == uid
            for n, p in pods.items()
        )

    wait_for(restarted_with_new_keys, "all pods restarted with the new key Secret")
    assert "KeysChanged" in kube.event_reasons(namespace, "wc")


def test_operator_killed_mid_reconcile_converges_after_restart(
    kube: Kube, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    # What a crash halfway through a first reconcile leaves: some children, no status.
    kube.apply(namespace, job_manifest())
    job = wait_for(lambda: kube.job(namespace, "wc"), "job")
    ref = m.JobRef("wc", namespace, job["metadata"]["uid"])
    public, secret = curve_keypair()
    kube.apply(namespace, m.build_secret(ref, public, secret))
    kube.apply(namespace, m.build_service_account(ref))
    keys_id = kube.core.read_namespaced_secret("wc-curve", namespace).metadata.uid
    kube.apply(namespace, m.build_executor_pod(ref, parse_spec(job["spec"]), 1, keys_id))
    first = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "first.log")
    first.start()
    try:
        wait_for(lambda: "wc-driver" in kube.pods(namespace), "the first operator at work")
        first.kill()
        kube.kubectl("delete", "-n", namespace, "configmap/wc-config", "--ignore-not-found")
        secret_uid = kube.core.read_namespaced_secret("wc-curve", namespace).metadata.uid
        executor_uid = kube.pods(namespace)["wc-executor-1"].metadata.uid
        second = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "second.log")
        second.start()
        try:
            wait_for(
                lambda: (
                    sorted(kube.pods(namespace)) == ["wc-driver", "wc-executor-0", "wc-executor-1"]
                    and kube.status(namespace, "wc").get("phase") == "Starting"
                    and kube.kubectl(
                        "get", "-n", namespace, "configmap/wc-config", check=False
                    ).returncode
                    == 0
                ),
                "the second operator converged",
            )
            assert (
                kube.core.read_namespaced_secret("wc-curve", namespace).metadata.uid == secret_uid
            )
            assert kube.pods(namespace)["wc-executor-1"].metadata.uid == executor_uid
            assert len(kube.core.list_namespaced_pod(namespace).items) == 3
        finally:
            second.stop()
    finally:
        first.stop()


def test_operator_serves_metrics_and_liveness(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: phase_is(kube, namespace, "wc", "Starting"), "phase Starting")

    def metrics() -> str:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5
            ) as r:
                return str(r.read().decode())
        except OSError:
            return ""

    text = wait_for(
        lambda: 'kubestream_operator_jobs{phase="Starting"} 1.0' in (t := metrics()) and t,
        "jobs metric",
    )
    assert "kubestream_operator_reconciles_total" in text
    assert "kubestream_operator_driver_restarts_total" in text
    with urllib.request.urlopen(
        f"http://127.0.0.1:{operator.liveness_port}/healthz", timeout=5
    ) as r:
        assert r.status == 200


def test_job_pods_get_no_api_rights_and_keys_stay_out_of_status_and_events(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
    who = f"--as=system:serviceaccount:{namespace}:wc-job"
    for verb, resource in (
        ("get", "secrets"),
        ("list", "pods"),
        ("create", "pods"),
        ("get", "streamingjobs"),
    ):
        result = kube.kubectl("auth", "can-i", verb, resource, "-n", namespace, who, check=False)
        assert result.stdout.strip() == "no", (verb, resource)
    secret = kube.core.read_namespaced_secret("wc-curve", namespace)
    values = {name: base64.b64decode(v).decode() for name, v in secret.data.items()}
    assert {m.PUBLIC_KEY, m.SECRET_KEY, m.READ_TOKEN_KEY} <= set(values)
    # The token generation is a counter ("0"), kept beside the keys but not secret.
    assert values.pop(m.TOKEN_GENERATION_KEY).isdigit()
    seen = kube.kubectl("get", "sj,events,pods", "-n", namespace, "-o", "yaml").stdout
    seen += operator.log.read_text()
    for name, value in values.items():
        assert value not in seen, name


def test_peered_replicas_hand_over_when_the_active_one_stops(
    kube: Kube, namespace: str, operator_kubeconfig: Path, tmp_path: Path
) -> None:
    high = OperatorProcess(
        operator_kubeconfig,
        namespace,
        tmp_path / "high.log",
        "--peering",
        "kubestream",
        "--priority",
        "100",
    )
    low = OperatorProcess(
        operator_kubeconfig,
        namespace,
        tmp_path / "low.log",
        "--peering",
        "kubestream",
        "--priority",
        "10",
    )

    def peers() -> int:
        found = kube.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", "kubestream"
        )
        return len(found.get("status") or {})

    high.start()
    try:
        wait_for(
            lambda: (
                kube.kubectl(
                    "get", "kopfpeerings", "-n", namespace, "kubestream", check=False
                ).returncode
                == 0
                and peers() == 1
            ),
            "the first replica registered",
        )
        low.start()
        wait_for(lambda: peers() == 2, "both replicas registered")
        kube.apply(namespace, job_manifest())
        wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods from the active replica")
        # Pods are listed before the operator logs creating them: wait for its line.
        wait_for(lambda: "DriverCreated" in high.log.read_text(), "the active replica's log")
        assert "DriverCreated" not in low.log.read_text()
        high.stop()
        wait_for(lambda: "Resuming operations" in low.log.read_text(), "the standby resumes")
        kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=3")
        wait_for(lambda: len(kube.pods(namespace, "executor")) == 3, "the standby scales the job")
    finally:
        high.stop()
        low.stop()
