"""Fixtures for the end-to-end suite: a real cluster, a namespace per test.

The suite takes any kubeconfig: with ``$KUBECONFIG`` set it uses that cluster;
otherwise it brings up the local one-node cluster (``e2e/cluster/up``, needs
root) or, with ``KUBESTREAM_E2E_CLUSTER=kind``, a kind cluster. It never runs
with ``make test``: pytest's testpaths leave e2e/ out, so run ``pytest e2e``.

    KUBESTREAM_E2E_CLUSTER   local (default) | kind | external: how images get
                             into the cluster (and which cluster to bring up)
    KUBESTREAM_E2E_DOWN=1    take a cluster this session brought up down again
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SCRIPTS = REPO / "e2e" / "cluster"
CACHE = Path(os.environ.get("KUBESTREAM_CACHE", Path.home() / ".cache" / "kubestream"))
LOCAL_KUBECONFIG = Path(
    os.environ.get("KUBESTREAM_CLUSTER_DIR", CACHE / "cluster"), "kubeconfig"
).resolve()
KIND_KUBECONFIG = (CACHE / "kind-kubeconfig").resolve()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a real Kubernetes cluster (e2e/)")
    config.addinivalue_line(
        "markers", "steps: the module's tests are one story, in order; a failure skips the rest"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    failed = getattr(item.parent, "_failed_step", None)
    if item.get_closest_marker("steps") and failed is not None:
        pytest.skip(f"an earlier step did not pass: {failed}")


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    """A step that failed or was skipped leaves the story's later steps nothing to build on."""
    if item.get_closest_marker("steps") and call.excinfo is not None:
        item.parent._failed_step = item.name  # type: ignore[union-attr]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
            # The first test may bring the cluster up from nothing (tens of
            # minutes on a new machine); every wait inside has its own timeout.
            item.add_marker(pytest.mark.timeout(3600))


@dataclass(frozen=True)
class Cluster:
    """The cluster under test and how to get a locally built image into it."""

    kubeconfig: Path
    flavour: str  # "local", "kind" or "external"
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def kubectl_argv(self, *args: str) -> list[str]:
        """The kubectl command line for this cluster, for commands that keep running."""
        return [_kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args]

    def kubectl(self, *args: str, check: bool = True) -> str:
        """Runs kubectl as a user would (printed, with its output); returns stdout."""
        return _tool(self.kubectl_argv(*args), check)

    def helm(self, *args: str, check: bool = True) -> str:
        """Runs helm, built from its pinned Go module by hack/build-helm.sh."""
        return _tool([_helm_binary(), "--kubeconfig", str(self.kubeconfig), *args], check)

    def build_image(self, tag: str, context: Path) -> None:
        """Builds ``context``'s Dockerfile as ``tag`` and makes the nodes have it."""
        if self.flavour == "local":
            _run([str(CLUSTER_SCRIPTS / "image"), "build", tag, str(context)])
        elif self.flavour == "kind":
            _run(["docker", "build", "-t", tag, str(context)])
            _run([str(CLUSTER_SCRIPTS / "kind"), "load", tag])
        else:
            pytest.skip(f"cannot load image {tag} into an external cluster; push it and rerun")


def _run(cmd: list[str]) -> list[str]:
    """Runs a cluster script, echoing its progress past pytest's capture."""
    print(f"$ {' '.join(cmd)}", file=sys.__stderr__, flush=True)
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            print(f"  {line}", end="", file=sys.__stderr__, flush=True)
    if proc.returncode != 0:
        tail = "\n".join(lines[-20:])
        pytest.fail(f"{cmd[0]} failed with exit code {proc.returncode}:\n{tail}", pytrace=False)
    return lines


def _tool(cmd: list[str], check: bool) -> str:
    print(f"$ {' '.join([Path(cmd[0]).name, *cmd[3:]])}", flush=True)
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    out = result.stdout.strip()
    if out:
        print(out, flush=True)
    if check and result.returncode != 0:
        pytest.fail(
            f"{Path(cmd[0]).name} {' '.join(cmd[3:])} exited {result.returncode}: "
            f"{result.stderr.strip()}",
            pytrace=False,
        )
    return result.stdout


def pinned(name: str) -> str:
    """A version from hack/versions.env, the one place tool versions are pinned."""
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key == name:
            return value.strip()
    raise KeyError(f"{name} is not in hack/versions.env")


@functools.cache
def _kubectl_binary() -> str:
    """The pinned kubectl the cluster scripts build, else the one on $PATH."""
    built = CACHE / f"kubernetes-{pinned('KUBE_VERSION')}" / "bin" / "kubectl"
    found = str(built) if built.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.fail(f"no kubectl: neither {built} nor one on $PATH", pytrace=False)
    return found


@functools.cache
def _helm_binary() -> str:
    return _run([str(REPO / "hack" / "build-helm.sh")])[-1]


def _flavour(kubeconfig: Path) -> str:
    chosen = os.environ.get("KUBESTREAM_E2E_CLUSTER")
    if chosen:
        return chosen
    if kubeconfig.resolve() == LOCAL_KUBECONFIG:
        return "local"
    if kubeconfig.resolve() == KIND_KUBECONFIG:
        return "kind"
    return "external"


def _bring_up(flavour: str) -> Path:
    if flavour == "kind":
        lines = _run([str(CLUSTER_SCRIPTS / "kind"), "up"])
    else:
        if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("no $KUBECONFIG and the local cluster needs root on Debian: skipping e2e")
        lines = _run([str(CLUSTER_SCRIPTS / "up")])
    match = re.fullmatch(r"KUBECONFIG=(.+)", lines[-1] if lines else "")
    if not match:
        pytest.fail(f"cluster script did not end with KUBECONFIG=...: {lines[-3:]}", pytrace=False)
    return Path(match.group(1))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    env = os.environ.get("KUBECONFIG")
    brought_up = not env
    if env:
        kubeconfig = Path(env.split(os.pathsep)[0])
        flavour = _flavour(kubeconfig)
    else:
        flavour = os.environ.get("KUBESTREAM_E2E_CLUSTER", "local")
        kubeconfig = _bring_up(flavour)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        version = client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as err:  # any failure here means: no cluster to test against
        pytest.fail(f"no cluster reachable with {kubeconfig}: {err}", pytrace=False)
    print(f"e2e: {flavour} cluster {version.git_version} ({kubeconfig})", file=sys.__stderr__)
    try:
        yield Cluster(kubeconfig=kubeconfig, flavour=flavour, api=api)
    finally:
        api.close()
        if brought_up and os.environ.get("KUBESTREAM_E2E_DOWN") == "1":
            script = CLUSTER_SCRIPTS / ("kind" if flavour == "kind" else "down")
            _run([str(script), "down"] if flavour == "kind" else [str(script)])


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40]
    name = f"e2e-{base}-{secrets.token_hex(3)}"
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        cluster.core.delete_namespace(name, propagation_policy="Background")
