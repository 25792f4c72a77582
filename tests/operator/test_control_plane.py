"""`make control-plane` gives people the same control plane the tests use."""

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubestream_operator import manifests as m
from kubestream_operator.spec import parse_spec
from tests.operator.harness import REPO, Kube, wait_for


def test_make_control_plane_prints_kubeconfig_and_down_leaves_nothing(
    kube: Kube, tmp_path: Path
) -> None:
    where = tmp_path / "cp"
    env = dict(os.environ, CONTROL_PLANE_DIR=str(where))
    up = subprocess.run(
        ["make", "--no-print-directory", "control-plane"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    pids = [int(p.read_text()) for p in where.glob("*.pid")]
    try:
        assert up.returncode == 0, up.stderr
        last = up.stdout.strip().splitlines()[-1]
        assert last == f"KUBECONFIG={where / 'kubeconfig'}"
        assert len(pids) == 3
        mine = Kube(where / "kubeconfig", kube.kubectl_bin)
        assert "default" in mine.kubectl("get", "namespaces", "-o", "name").stdout
    finally:
        down = subprocess.run(
            ["make", "--no-print-directory", "control-plane-down"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} still running"
    assert list(where.glob("*.pid")) == []


def test_examples_are_accepted_by_the_api_server(kube: Kube, namespace: str) -> None:
    for path in sorted((REPO / "examples").glob("*-job.yaml")):
        result = kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
        assert "created (server dry run)" in result.stdout


def test_the_pods_built_from_each_example_pass_a_strict_server_side_dry_run(
    kube: Kube, namespace: str
) -> None:
    """What the operator would create for each example, checked field by field by the API
    server; the examples' Secrets are mounted read-only into every pod."""
    examples = [
        (path, m.JobRef(doc["metadata"]["name"], namespace, "uid-1"), parse_spec(doc["spec"]))
        for path in sorted((REPO / "examples").glob("*-job.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]
    for _, job, _ in examples:
        account = m.build_service_account(job)  # pods name it: it must exist
        # No such job object here: an owner reference would have the garbage collector
        # delete the account.
        account["metadata"].pop("ownerReferences")
        kube.apply(namespace, account)
    for path, job, spec in examples:
        pods = [m.build_driver_pod(job, spec, "keys-1"), m.build_executor_pod(job, spec, 0, "k")]
        for pod in pods:
            pod["metadata"].pop("ownerReferences")

        def dry_run(pods: list[dict[str, Any]] = pods) -> subprocess.CompletedProcess[str]:
            return kube.kubectl(
                "apply", "--server-side", "--dry-run=server", "--field-manager=examples-test",
                "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(pods), check=False,
            )  # fmt: skip

        # The admission plugin finds a new ServiceAccount once its cache has it.
        wait_for(
            lambda: "looking up service account" not in dry_run().stderr,
            "the ServiceAccounts to be known to admission",
        )
        result = dry_run()
        assert result.returncode == 0, f"{path.name}: {result.stderr}"
        wanted = {(s.secret_name, s.mount_path) for s in spec.secret_mounts}
        for pod in pods:
            volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
            mounted = {
                (volumes[v["name"]]["secret"]["secretName"], v["mountPath"])
                for v in pod["spec"]["containers"][0]["volumeMounts"]
                if v.get("readOnly") and "secret" in volumes[v["name"]]
            }
            assert wanted <= mounted, path.name
