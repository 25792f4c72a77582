"""`make control-plane` gives people the same control plane the tests use."""

import os
import subprocess
from pathlib import Path

from tests.operator.harness import REPO, Kube


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
