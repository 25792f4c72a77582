"""The job's NetworkPolicy against the real API server: the UI port admits only the
operator's and the monitoring namespace, a policy open to every pod (an older
operator's) is narrowed, and a current one is left alone pass after pass."""

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest

BY_NAME = "kubernetes.io/metadata.name"


@pytest.fixture
def operator_with_ui_namespaces(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OperatorProcess]:
    monkeypatch.setenv("KUBESTREAM_OPERATOR_OWN_NAMESPACE", "kubestream-system")
    monkeypatch.setenv("KUBESTREAM_OPERATOR_MONITORING_NAMESPACE", "monitoring")
    proc = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log")
    proc.start()
    yield proc
    proc.stop()


def policy(kube: Kube, namespace: str) -> dict[str, Any]:
    found = kube.kubectl(
        "get", "networkpolicy", "wc-pods", "-n", namespace, "-o", "json", check=False
    )
    return json.loads(found.stdout) if found.returncode == 0 else {}


def reconciles(operator: OperatorProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as r:
        text = r.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("kubestream_operator_reconciles_total")
    )


def ui_sources(doc: dict[str, Any]) -> list[Any]:
    rules = doc["spec"]["ingress"]
    return [r.get("from") for r in rules if any(p["port"] == 4040 for p in r["ports"])]


def test_the_ui_port_admits_only_the_operators_and_the_monitoring_namespace(
    kube: Kube, namespace: str, operator_with_ui_namespaces: OperatorProcess
) -> None:
    operator = operator_with_ui_namespaces
    kube.apply(namespace, job_manifest("wc"))
    current = wait_for(lambda: policy(kube, namespace), "the job's NetworkPolicy")
    expected = [
        [
            {"namespaceSelector": {"matchLabels": {BY_NAME: "kubestream-system"}}},
            {"namespaceSelector": {"matchLabels": {BY_NAME: "monitoring"}}},
        ]
    ]
    assert ui_sources(current) == expected
    # Left alone: the stored policy is what the operator builds, pass after pass.
    seen = reconciles(operator)
    wait_for(lambda: reconciles(operator) >= seen + 3, "three more reconcile passes")
    assert (
        policy(kube, namespace)["metadata"]["resourceVersion"]
        == (current["metadata"]["resourceVersion"])
    )
    # An older operator's policy, 4040 open to every pod: narrowed again.
    opened = {"spec": {"ingress": [current["spec"]["ingress"][0], {"ports": [{"port": 4040}]}]}}
    patched = kube.kubectl(
        "patch", "networkpolicy", "wc-pods", "-n", namespace, "--type=merge",
        "-p", json.dumps(opened), "-o", "json",
    ).stdout  # fmt: skip
    # The patch's own answer: the operator, passing every second, may narrow it before a read.
    assert ui_sources(json.loads(patched)) == [None]
    wait_for(lambda: ui_sources(policy(kube, namespace)) == expected, "the policy narrowed")
