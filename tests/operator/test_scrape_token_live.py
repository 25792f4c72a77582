"""Rotating the cluster's scrape token, against the real API server: an operator started
with a new token writes it into every job's Secret (the key the pods mount as a file),
restarting no pod; one started with none removes it. No token in its log or Events."""

import base64
from pathlib import Path

import pytest

from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest


def scrape_token(kube: Kube, namespace: str) -> str | None:
    found = kube.core.list_namespaced_secret(namespace, field_selector="metadata.name=wc-curve")
    data = (found.items[0].data or {}) if found.items else {}
    encoded = data.get("ui-scrape-token")
    return base64.b64decode(encoded).decode() if encoded else None


def test_an_operator_with_a_new_scrape_token_rotates_it_in_every_jobs_secret(
    kube: Kube,
    namespace: str,
    operator_kubeconfig: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "operator.log"

    def operator_with(token: str) -> OperatorProcess:
        monkeypatch.setenv("KUBESTREAM_OPERATOR_SCRAPE_TOKEN", token)
        proc = OperatorProcess(operator_kubeconfig, namespace, log)
        proc.start()
        return proc

    first = operator_with("marker-scrape-first")
    try:
        kube.apply(namespace, job_manifest("wc"))
        wait_for(lambda: len(kube.pods(namespace)) == 3, "the job's pods")
        assert scrape_token(kube, namespace) == "marker-scrape-first"
        pods = {name: pod.metadata.uid for name, pod in kube.pods(namespace).items()}
    finally:
        first.stop()
    second = operator_with("marker-scrape-second")
    try:
        wait_for(
            lambda: scrape_token(kube, namespace) == "marker-scrape-second", "the rotated token"
        )
        wait_for(lambda: "ScrapeTokenRotated" in kube.event_reasons(namespace, "wc"), "the Event")
    finally:
        second.stop()
    none = operator_with("")
    try:
        wait_for(lambda: scrape_token(kube, namespace) is None, "the token removed")
    finally:
        none.stop()
    assert {name: pod.metadata.uid for name, pod in kube.pods(namespace).items()} == pods
    shown = log.read_text(errors="replace")
    shown += kube.kubectl("get", "events,sj", "-n", namespace, "-o", "json").stdout
    assert "marker-scrape" not in shown
