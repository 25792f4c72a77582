"""Fixtures for the operator tests.

``kube`` starts a real control plane once per session (etcd, kube-apiserver,
kube-controller-manager; binaries built by hack/ scripts when a collected test
needs them and they are not cached yet), installs
the CRDs and the operator's RBAC from the repo. ``operator`` runs the operator in
its own fresh namespace with exactly that RBAC, so a missing permission fails a test.
"""

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.operator.harness import REPO, Kube, OperatorProcess


def _script(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build the control plane's binaries before the first test that needs them.

    The first build from Go modules takes minutes, longer than the per-test
    timeout, so it happens here rather than inside a fixture; later runs find
    everything cached and this costs a few milliseconds.
    """
    if not any("kube" in getattr(item, "fixturenames", ()) for item in items):
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    hack = REPO / "hack"
    for build in (
        [str(hack / "build-kube.sh"), "kube-apiserver", "kube-controller-manager", "kubectl"],
        [str(hack / "build-etcd.sh")],
    ):
        if reporter is not None:
            reporter.write_line(f"operator tests: {' '.join(Path(a).name for a in build)}")
        result = subprocess.run(build, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.exit(f"{build[0]} failed:\n{result.stderr[-4000:]}", returncode=1)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    where = tmp_path_factory.mktemp("control-plane")
    script = str(REPO / "hack" / "control-plane.sh")
    last = _script(script, "up", str(where))
    try:
        yield Path(last.split("=", 1)[1])
    finally:
        subprocess.run([script, "down", str(where)], capture_output=True, check=False)


@pytest.fixture(scope="session")
def kube(control_plane: Path) -> Kube:
    kubectl = str(Path(_script(str(REPO / "hack" / "build-kube.sh"), "kubectl")) / "kubectl")
    k = Kube(control_plane, kubectl)
    k.kubectl("apply", "-f", str(REPO / "crds"))
    k.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    k.kubectl("apply", "-f", str(REPO / "deploy" / "rbac"))
    return k


@pytest.fixture(scope="session")
def operator_kubeconfig(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig holding the operator ServiceAccount's token: its RBAC only."""
    token = kube.kubectl(
        "create", "token", "kubestream-operator", "-n", "kubestream-system", "--duration=6h"
    ).stdout.strip()
    cfg = yaml.safe_load(kube.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": token}}]
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    kube.kubectl("create", "namespace", name)
    yield name
    kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator(
    operator_kubeconfig: Path, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log")
    proc.start()
    yield proc
    proc.stop()
    print(f"--- operator log ({proc.log}) ---\n{proc.log_tail()}")
