"""No secret in what the operator emits, against the real API server: jobs whose
Secret references (variables and mounted files) hold known marker values, then a
scan of the jobs' status documents, every Event, the pods the operator made, its
/metrics and its log."""

import base64
import secrets
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from kubestream.driver.api_auth import read_token
from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest

SCRAPE = f"marker-scrape-{secrets.token_hex(6)}"


@pytest.fixture
def operator_with_scrape_token(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorProcess]:
    monkeypatch.setenv("KUBESTREAM_OPERATOR_SCRAPE_TOKEN", SCRAPE)
    proc = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log")
    proc.start()
    yield proc
    proc.stop()


def test_no_secret_in_status_events_pods_metrics_or_the_operators_log(
    kube: Kube, namespace: str, operator_with_scrape_token: OperatorProcess
) -> None:
    password = f"marker-password-{secrets.token_hex(6)}"
    kube.kubectl(
        "create", "secret", "generic", "kafka", f"--from-literal=password={password}",
        "-n", namespace,
    )  # fmt: skip
    client_key = f"marker-client-key-{secrets.token_hex(6)}"
    kube.kubectl(
        "create", "secret", "generic", "kafka-tls", f"--from-literal=client.key={client_key}",
        "--from-literal=ca.crt=not-secret", "-n", namespace,
    )  # fmt: skip
    good = [{"env": "KAFKA_PASSWORD", "secretName": "kafka", "key": "password"}]
    missing = [{"env": "KAFKA_PASSWORD", "secretName": "kafka", "key": "no-such-key"}]
    files = [{"secretName": "kafka-tls", "mountPath": "/var/run/secrets/kafka-tls"}]
    absent = [{"secretName": "no-such-secret", "mountPath": "/var/run/secrets/tls"}]
    ui = {"readAccess": "token", "tls": {}}  # the operator makes the UI certificate's key too
    kube.apply(
        namespace,
        job_manifest("wc", secretRefs=good, secretMounts=files, ui=ui),
    )
    kube.apply(namespace, job_manifest("bad", secretRefs=missing))
    kube.apply(namespace, job_manifest("nofiles", secretMounts=absent))
    wait_for(lambda: len(kube.pods(namespace)) == 3, "the good job's driver and executors")

    def missing_secret(job: str) -> bool:
        return kube.condition(namespace, job, "Degraded").get("reason") == "SecretNotFound"

    for name in ("bad", "nofiles"):
        wait_for(partial(missing_secret, name), f"the {name} job's SecretNotFound")
    for pod in kube.pods(namespace).values():  # the files reach every pod, by reference
        volumes = {v.name: v for v in pod.spec.volumes}
        (mount,) = [
            v for v in pod.spec.containers[0].volume_mounts if v.mount_path == files[0]["mountPath"]
        ]
        assert mount.read_only
        assert volumes[mount.name].secret.secret_name == "kafka-tls"

    data = kube.core.read_namespaced_secret("wc-curve", namespace).data
    stored = {key: base64.b64decode(value).decode() for key, value in data.items()}
    assert stored["ui-scrape-token"] == SCRAPE  # the operator handed the job its scrape token
    assert stored["ui-read-token"] == read_token(stored["curve-secret-key"])
    private_key = stored["tls.key"].splitlines()
    assert private_key[0] == "-----BEGIN PRIVATE KEY-----"
    markers = {
        "application credential": password,
        "mounted client key": client_key,
        # Each line of the key's base64 body: a log showing part of it is found too.
        **{f"UI certificate key, line {i}": line for i, line in enumerate(private_key[1:-1])},
        "CURVE secret key": stored["curve-secret-key"],
        "read token": stored["ui-read-token"],
        "scrape token": SCRAPE,
    }
    operator = operator_with_scrape_token
    port = operator.metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    emitted = {
        "status documents": kube.kubectl("get", "sj", "-n", namespace, "-o", "json").stdout,
        "Events": kube.kubectl("get", "events", "-n", namespace, "-o", "json").stdout,
        "pods": kube.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout,
        "operator /metrics": metrics,
        "operator log": operator.log.read_text(errors="replace"),
    }
    # The refusal names the Secret and key, never a value.
    assert "kafka/no-such-key" in emitted["status documents"]
    assert "'no-such-secret'" in emitted["status documents"]
    leaks = [
        f"{what} in {where}"
        for what, value in markers.items()
        for where, text in emitted.items()
        if value in text
    ]
    assert not leaks, leaks
