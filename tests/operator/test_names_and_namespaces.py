"""Job names Kubernetes refuses and namespaces deleted under a running job, against
the real control plane (kube-apiserver with its admission, kube-controller-manager
with its namespace controller and garbage collector)."""

import time
from collections.abc import Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kubestream_operator import names
from tests.operator.harness import REPO, Kube, OperatorProcess, wait_for
from tests.operator.test_lifecycle import job_manifest, phase_is, run_all

CRD = "crd/streamingjobs.kubestream.io"


def apply_refused(kube: Kube, namespace: str, name: str) -> str:
    result = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(job_manifest(name)), check=False
    )
    assert result.returncode != 0, f"{name!r} was admitted"
    return result.stderr


def test_names_children_cannot_use_are_refused_stating_the_rule_and_limit(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    longest = "l" * names.MAX_JOB_NAME_LENGTH
    for name in (longest + "x", "wordcount.v2", "2nd-wordcount", "wordcount-"):
        stderr = apply_refused(kube, namespace, name)
        assert "metadata.name" in stderr
        assert names.JOB_NAME_RULE in " ".join(stderr.split()), stderr
        assert kube.job(namespace, name) is None
    # The longest admitted name gets every child, the driver Service included.
    kube.apply(namespace, job_manifest(longest))
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    kube.core.read_namespaced_service(f"{longest}-driver", namespace)
    assert kube.condition(namespace, longest, "Degraded").get("status") != "True"


@pytest.fixture
def crd_without_name_rule(kube: Kube) -> Iterator[None]:
    """The CRD as it was before it checked names, restored afterwards."""
    kube.kubectl(
        "patch",
        CRD,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/versions/0/schema/openAPIV3Schema/'
        'x-kubernetes-validations"}]',
    )
    try:
        yield
    finally:
        kube.kubectl("apply", "-f", str(REPO / "crds" / "streamingjob.yaml"))


def test_a_job_admitted_under_a_name_children_cannot_use_is_degraded_and_can_be_deleted(
    kube: Kube, namespace: str, operator: OperatorProcess, crd_without_name_rule: None
) -> None:
    # Over 63 characters the name is no label value: a selector on it is invalid.
    too_long = "a" * 70
    dotted = "wordcount.v2"
    for name in (too_long, dotted):
        manifest = yaml.safe_dump(job_manifest(name))
        wait_for(
            lambda m=manifest: (
                kube.kubectl("apply", "-n", namespace, "-f", "-", stdin=m, check=False).returncode
                == 0
            ),
            f"{name} admitted by the CRD without its name rule",
        )
    for name in (too_long, dotted):
        degraded = wait_for(
            lambda n=name: (
                (c := kube.condition(namespace, n, "Degraded")).get("reason") == "InvalidName" and c
            ),
            f"{name} Degraded with InvalidName",
        )
        assert degraded["message"].startswith(names.JOB_NAME_RULE)
        assert name in degraded["message"]
    # Nothing was made for either: no pod, no Service, no key Secret.
    assert kube.core.list_namespaced_pod(namespace).items == []
    assert kube.core.list_namespaced_service(namespace).items == []
    assert [
        s.metadata.name
        for s in kube.core.list_namespaced_secret(namespace).items
        if s.metadata.name.endswith("-curve")
    ] == []
    for name in (too_long, dotted):
        kube.kubectl("delete", "-n", namespace, f"sj/{name}", "--wait=true", "--timeout=30s")
        assert kube.job(namespace, name) is None
    assert "failed temporarily" not in operator.log.read_text()


def test_deleting_the_namespace_of_a_running_job_finishes_within_its_graceful_stop(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    grace = 5
    kube.apply(namespace, job_manifest(gracefulStopTimeoutSeconds=grace))
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    run_all(kube, namespace)
    wait_for(lambda: phase_is(kube, namespace, "wc", "Running"), "phase Running")
    started = time.monotonic()
    mark = len(operator.log.read_text())
    kube.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        try:
            kube.core.read_namespace(namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    # kopf retries a failed handler after 60 s; waiting less shows none failed.
    wait_for(gone, "the namespace gone", timeout=grace + 25)
    print(f"namespace {namespace} gone {time.monotonic() - started:.1f}s after its deletion")
    log = operator.log.read_text()[mark:]
    problems = [line for line in log.splitlines() if " ERROR " in line or " WARNING " in line]
    assert problems == [], "\n".join(problems)
    assert "Handler 'graceful-stop' succeeded" in log, "the finalizer ran"
