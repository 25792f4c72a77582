"""The chart against the real API server of the operator tests' control plane:
server-side dry runs of what it renders, `helm install --dry-run=server` and its
NOTES, and the operator really working with the chart's namespaced RBAC."""

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart.chart import Chart, Manifest, non_default, one
from tests.operator.harness import Kube, OperatorProcess, wait_for

# The Prometheus Operator's PodMonitor CRD is not on the test API server and its
# real definition is not available offline, so this stand-in only makes the kind
# known: the dry run checks the PodMonitors' apiVersion and kind and that they are
# namespaced; their fields are checked against the job pods in test_render.py.
PODMONITOR_CRD: Manifest = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "podmonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "PodMonitor", "plural": "podmonitors", "singular": "podmonitor"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def namespaces(kube: Kube) -> Iterator[list[str]]:
    """A release namespace and two namespaces to watch, all fresh."""
    base = f"c-{secrets.token_hex(3)}"
    names = [f"{base}-release", f"{base}-a", f"{base}-b"]
    for name in names:
        kube.kubectl("create", "namespace", name)
    yield names
    for name in names:
        kube.kubectl("delete", "namespace", name, "--wait=false", check=False)


def dry_run(kube: Kube, manifests: str) -> list[str]:
    """Server-side apply, dry run: the API server validates every field (strictly)."""
    result = kube.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=chart-test",
        "-f",
        "-",
        stdin=manifests,
        check=False,
    )
    assert result.returncode == 0, f"dry run refused:\n{result.stderr}"
    return result.stdout.splitlines()


def test_default_render_passes_a_server_side_dry_run(
    chart: Chart, kube: Kube, namespaces: list[str]
) -> None:
    release = namespaces[0]
    text = chart.template_text("--include-crds", namespace=release)
    applied = dry_run(kube, text)
    assert len(applied) == len([d for d in yaml.safe_load_all(text) if d]), applied
    assert all(line.endswith("(server dry run)") for line in applied), applied

    # The same dry run refuses what the API server does not know.
    deployment = one([d for d in yaml.safe_load_all(text) if d], "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    result = kube.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-",
        stdin=json.dumps(deployment), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "livenesProbe" in result.stderr


def test_non_default_render_passes_a_server_side_dry_run(
    chart: Chart, kube: Kube, namespaces: list[str]
) -> None:
    release, *watched = namespaces
    kube.kubectl("apply", "-f", "-", stdin=json.dumps(PODMONITOR_CRD))
    kube.kubectl("wait", "--for=condition=Established", "crd/podmonitors.monitoring.coreos.com")
    text = chart.template_text(*non_default(*watched), namespace=release)
    applied = dry_run(kube, text)
    for kind_name in (
        "deployment.apps/ks-kubestream-operator",
        "networkpolicy.networking.k8s.io/ks-kubestream-operator",
        "podmonitor.monitoring.coreos.com/ks-kubestream-jobs",
        "podmonitor.monitoring.coreos.com/ks-kubestream-operator",
        "role.rbac.authorization.k8s.io/ks-kubestream-operator",
    ):
        assert any(line.startswith(kind_name + " ") for line in applied), (kind_name, applied)


def test_helm_install_prints_the_next_steps_and_uninstall_leaves_nothing(
    chart: Chart, kube: Kube, namespaces: list[str]
) -> None:
    """A real install (no kubelet here, so no pod runs) and uninstall; only the CRDs stay."""
    release_ns = namespaces[0]
    release = f"in-{secrets.token_hex(3)}"
    kinds = "all,serviceaccounts,configmaps,clusterroles,clusterrolebindings,clusterkopfpeerings"

    def left() -> list[str]:
        selector = f"app.kubernetes.io/instance={release}"
        return kube.kubectl("get", kinds, "-A", "-l", selector, "-o", "name").stdout.split()

    peering = f"peering-{release}"
    installed = chart.run(
        "install", release, str(chart.path), "--namespace", release_ns,
        "--set", f"peeringName={peering}", kubeconfig=kube.kubeconfig,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    notes = installed.stdout.split("NOTES:", 1)[1]
    assert "kubectl apply -f examples/wordcount-job.yaml" in notes
    assert "kubectl get sj -w" in notes
    assert f"helm test {release} -n {release_ns}" in notes
    assert f"clusterkopfpeering.kopf.dev/{peering}" in left()
    assert f"deployment.apps/{release}-kubestream-operator" in left()

    uninstalled = chart.run(
        "uninstall", release, "--namespace", release_ns, "--wait", kubeconfig=kube.kubeconfig
    )
    assert uninstalled.returncode == 0, uninstalled.stderr
    wait_for(lambda: not left(), "nothing of the release left")
    kube.kubectl("get", "crd", "streamingjobs.kubestream.io")


def job(name: str) -> Manifest:
    return {
        "apiVersion": "kubestream.io/v1alpha1",
        "kind": "StreamingJob",
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example.com/team/wordcount:1.0",
            "application": {"module": "wordcount", "function": "build"},
            "executors": {"replicas": 2, "min": 1, "max": 4},
        },
    }


def can_i(kube: Kube, kubeconfig: Path, *args: str) -> bool:
    result = subprocess.run(
        [kube.kubectl_bin, "--kubeconfig", str(kubeconfig), "auth", "can-i", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    answer = result.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl auth can-i {' '.join(args)}: {result.stderr}"
    return answer == "yes"


def test_operator_runs_a_job_with_the_charts_namespaced_rbac_and_helm_test_passes(
    chart: Chart, kube: Kube, namespaces: list[str], tmp_path: Path
) -> None:
    release_ns, watched, other = namespaces
    release = f"rb-{secrets.token_hex(3)}"
    objects = chart.template(
        "--set", f"watchNamespaces={{{watched}}}", release=release, namespace=release_ns
    )
    # What the operator needs before it starts: its account, RBAC, peering object.
    prerequisites = [
        o
        for o in objects
        if o["kind"]
        in {
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "KopfPeering",
        }
    ]
    kube.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": prerequisites}),
    )
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    cluster_role = one(objects, "ClusterRole", f"{release}-kubestream-operator")["metadata"]["name"]
    operator: OperatorProcess | None = None
    try:
        token = kube.kubectl(
            "create", "token", account, "-n", release_ns, "--duration=1h"
        ).stdout.strip()
        cfg = yaml.safe_load(kube.kubeconfig.read_text())
        cfg["users"] = [{"name": "admin", "user": {"token": token}}]
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(cfg))

        # Least privilege: everything in the watched namespace, nothing elsewhere.
        assert can_i(kube, kubeconfig, "create", "pods", "-n", watched)
        assert can_i(kube, kubeconfig, "get", "secrets", "-n", watched)
        assert not can_i(kube, kubeconfig, "get", "secrets", "-n", other)
        assert not can_i(kube, kubeconfig, "get", "secrets", "-n", release_ns)
        assert not can_i(kube, kubeconfig, "create", "clusterkopfpeerings.kopf.dev")
        assert not can_i(kube, kubeconfig, "list", "nodes")

        operator = OperatorProcess(
            kubeconfig, watched, tmp_path / "operator.log", "--peering", "kubestream"
        )
        operator.start()
        kube.apply(watched, job("wc"))
        wait_for(lambda: len(kube.pods(watched)) == 3, "driver and 2 executor pods")
        kube.custom.get_namespaced_custom_object(
            "kopf.dev", "v1", watched, "kopfpeerings", "kubestream"
        )
        log = operator.log.read_text()
        assert "Forbidden" not in log and "Not enough permissions" not in log, log[-4000:]

        # The `helm test` pod's own check, run here against the live operator.
        probe = one(objects, "Pod")["spec"]["containers"][0]
        assert probe["command"][:2] == ["python3", "-c"]
        script = probe["command"][2]
        local = {
            "LIVENESS_URL": f"http://127.0.0.1:{operator.liveness_port}/healthz",
            "METRICS_URL": f"http://127.0.0.1:{operator.metrics_port}/metrics",
        }
        assert {e["name"] for e in probe["env"]} == set(local)
        passed = subprocess.run(
            [sys.executable, "-c", script], env=local, capture_output=True, text=True, timeout=90
        )
        assert passed.returncode == 0, passed.stderr
        assert "/metrics: HTTP 200" in passed.stdout
        wrong = local | {"METRICS_URL": local["LIVENESS_URL"]}
        failed = subprocess.run(
            [sys.executable, "-c", script], env=wrong, capture_output=True, text=True, timeout=90
        )
        assert failed.returncode != 0
        assert "answered without 'kubestream_operator_reconciles'" in failed.stderr
    finally:
        if operator is not None:
            operator.stop()
            print(f"--- operator log ---\n{operator.log_tail()}")
        kube.kubectl("delete", "clusterrolebinding,clusterrole", cluster_role, check=False)
        # The ClusterRoles for people came with the prerequisites.
        selector = f"app.kubernetes.io/instance={release}"
        kube.kubectl("delete", "clusterrole", "-l", selector, check=False)


README = Path(__file__).resolve().parents[2] / "charts" / "kubestream" / "README.md"


def readme_table() -> dict[str, dict[str, bool]]:
    """The "Who may do what" table: by role, each `kubectl auth can-i` question and its answer."""
    section = README.read_text().split("## Who may do what", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    questions = {
        "get": "get streamingjobs",
        "list": "list streamingjobs",
        "watch": "watch streamingjobs",
        "create": "create streamingjobs",
        "patch": "patch streamingjobs",
        "update": "update streamingjobs",
        "delete": "delete streamingjobs",
        "update `streamingjobs/scale`": "update streamingjobs.kubestream.io --subresource=scale",
        "get `secrets`": "get secrets",
    }
    table: dict[str, dict[str, bool]] = {"view": {}, "edit": {}, "admin": {}}
    for row in rows:
        verb, *answers = [cell.strip() for cell in row.strip("|").split("|")]
        key = max((k for k in questions if verb == k or verb.startswith(k + " ")), key=len)
        question = questions[key]
        for role, answer in zip(table, answers, strict=True):
            assert answer in ("yes", "no"), row
            table[role][question] = answer == "yes"
    assert len(table["view"]) == len(questions), "a row of the README's table is missing"
    return table


def test_view_edit_and_admin_users_get_the_readmes_rights_on_streamingjobs(
    chart: Chart, kube: Kube, namespaces: list[str]
) -> None:
    """The chart's ClusterRoles aggregate into the built-in roles: asked with impersonated
    users of each role against the real API server, every answer is the README's."""
    release_ns, team, other = namespaces
    kube.kubectl("apply", "-f", str(Path(__file__).resolve().parents[2] / "crds"))
    roles = [o for o in chart.template(namespace=release_ns) if o["kind"] == "ClusterRole"]
    user_roles = [r for r in roles if r["metadata"]["name"].endswith(("-view", "-edit"))]
    assert len(user_roles) == 2
    kube.kubectl(
        "apply", "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": user_roles}),
    )  # fmt: skip
    try:
        user = {role: f"{role}-{secrets.token_hex(2)}" for role in ("view", "edit", "admin")}
        for role, name in user.items():
            kube.kubectl(
                "create", "rolebinding", name, f"--clusterrole={role}", f"--user={name}", "-n", team
            )
        table = readme_table()

        def answers() -> dict[str, dict[str, bool]]:
            return {
                role: {
                    q: can_i(kube, kube.kubeconfig, *q.split(), "-n", team, "--as", user[role])
                    for q in table[role]
                }
                for role in table
            }

        # The aggregation controller copies the rules into the built-in roles shortly after.
        wait_for(lambda: answers() == table, "the built-in roles to aggregate the chart's", 60)
        # Bound in one namespace only: nothing in another.
        assert not can_i(
            kube, kube.kubeconfig, "get", "streamingjobs", "-n", other, "--as", user["admin"]
        )
    finally:
        for role in user_roles:
            kube.kubectl("delete", "clusterrole", role["metadata"]["name"], check=False)
