"""`helm lint` and `helm template` of charts/kubestream, without a cluster: what
the chart renders must agree with the operator, its RBAC, its CRDs and the
runtime's metrics, and a misspelt value must be refused."""

import json
import re
import tomllib
from dataclasses import replace
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from kubestream.cli import build_parser
from kubestream_operator.manifests import (
    UI_SCHEME_LABEL,
    JobRef,
    build_driver_pod,
    build_executor_pod,
)
from kubestream_operator.metrics import OperatorMetrics
from kubestream_operator.peering import choose_priority
from kubestream_operator.spec import parse_spec
from tests.chart.chart import Chart, Manifest, find, non_default, one, rule_set
from tests.operator.harness import REPO

NON_DEFAULT = non_default("team-a", "team-b")
OPERATOR = "ks-kubestream-operator"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def deploy_rules() -> set[tuple[str, str, str]]:
    docs = yaml.safe_load_all((REPO / "deploy" / "rbac" / "operator.yaml").read_text())
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    return rule_set(role["rules"])


def container(objects: list[Manifest]) -> Manifest:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator"]
    found: Manifest = pod["containers"][0]
    return found


def operator_args(monkeypatch: pytest.MonkeyPatch, objects: list[Manifest], pod_name: str) -> Any:
    """Parse `kubestream operator` as the rendered pod would start it: its command and env."""
    c = container(objects)
    assert c["command"] == ["kubestream", "operator"]
    monkeypatch.delenv("KUBESTREAM_OPERATOR_PRIORITY", raising=False)
    for var in c["env"]:
        if "value" in var:
            monkeypatch.setenv(var["name"], var["value"])
        else:
            ref = var["valueFrom"]["fieldRef"]["fieldPath"]
            assert ref in ("metadata.name", "metadata.namespace"), var
            monkeypatch.setenv(var["name"], pod_name if ref == "metadata.name" else "ns")
    return build_parser().parse_args(c["command"][1:])


@pytest.mark.parametrize("args", [[], NON_DEFAULT], ids=["default", "non-default"])
def test_helm_lint_passes_strictly(chart: Chart, args: list[str]) -> None:
    result = chart.run("lint", "--strict", str(chart.path), *args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_version_is_the_packages() -> None:
    meta = yaml.safe_load((REPO / "charts" / "kubestream" / "Chart.yaml").read_text())
    assert meta["appVersion"] == VERSION


def test_chart_crds_are_the_repo_crds() -> None:
    chart_crds = REPO / "charts" / "kubestream" / "crds"
    assert sorted(p.name for p in chart_crds.iterdir()) == [
        "kopf-peering.yaml",
        "streamingjob.yaml",
    ]
    for crd in chart_crds.iterdir():
        source = REPO / "crds" / crd.name
        assert crd.read_bytes() == source.read_bytes(), (
            f"{crd.relative_to(REPO)} differs from {source.relative_to(REPO)}; "
            f"copy it: cp {source.relative_to(REPO)} {crd.relative_to(REPO)}"
        )


def test_default_values_render_a_restricted_cluster_wide_operator(
    chart: Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = chart.template("--include-crds")
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["CustomResourceDefinition"] * 3
        + ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"]
        + ["ClusterKopfPeering", "ConfigMap", "Pod"]
        + ["ClusterRole"] * 2  # the view and edit roles for people (userRoles)
    )
    crds = {o["metadata"]["name"] for o in find(objects, "CustomResourceDefinition")}
    assert crds == {
        "streamingjobs.kubestream.io",
        "kopfpeerings.kopf.dev",
        "clusterkopfpeerings.kopf.dev",
    }

    # RBAC: exactly deploy/rbac/operator.yaml's rules, bound to the operator's account.
    assert rule_set(one(objects, "ClusterRole", OPERATOR)["rules"]) == deploy_rules()
    binding = one(objects, "ClusterRoleBinding", OPERATOR)
    assert binding["roleRef"]["name"] == OPERATOR
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR, "namespace": "ks-system"}
    ]

    deployment = one(objects, "Deployment", OPERATOR)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == OPERATOR
    c = container(objects)
    assert c["image"] == f"kubestream/kubestream:{VERSION}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert c["resources"]["limits"]["memory"]

    # The env the pod gets is what `kubestream operator` reads.
    args = operator_args(monkeypatch, objects, f"{OPERATOR}-6d4cf56db6-x7k2p")
    assert args.func.__module__ == "kubestream_operator.cli"
    assert args.namespace == []
    assert (args.peering, args.priority) == ("kubestream", None)
    assert args.pod_name == f"{OPERATOR}-6d4cf56db6-x7k2p"
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == args.peering
    assert (args.metrics_port, args.liveness_port) == (9090, 8080)
    assert (args.resync_seconds, args.log_level) == (10.0, "INFO")

    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 9090, "liveness": 8080}
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "liveness"}
    service = one(objects, "Service", OPERATOR)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert find(objects, "NetworkPolicy") == find(objects, "PodMonitor") == []


def test_non_default_values_render_namespaced_rbac_peers_policy_and_monitors(
    chart: Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = chart.template(*NON_DEFAULT)

    # One Role per watched namespace; the ClusterRole keeps only kopf's discovery.
    discovery = {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    assert rule_set(one(objects, "ClusterRole", OPERATOR)["rules"]) == discovery
    cluster_peering = {t for t in deploy_rules() if t[1] == "clusterkopfpeerings"}
    roles = find(objects, "Role", OPERATOR)
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert rule_set(role["rules"]) == deploy_rules() - discovery - cluster_peering
    bindings = find(objects, "RoleBinding", OPERATOR)
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": OPERATOR,
        }
        assert binding["subjects"][0]["namespace"] == "ks-system"

    # Two pods of one template peer, each with its own priority from its name:
    # equal ones would all pause.
    deployment = one(objects, "Deployment", OPERATOR)
    assert deployment["spec"]["replicas"] == 2
    first, second = (
        operator_args(monkeypatch, objects, f"{OPERATOR}-6d4cf56db6-{suffix}")
        for suffix in ("x7k2p", "q9m3z")
    )
    assert first.namespace == second.namespace == ["team-a", "team-b"]
    assert first.peering == second.peering == "kubestream"
    priorities = [choose_priority(a.priority, a.pod_name) for a in (first, second)]
    assert all("derived from pod name" in p.reason for p in priorities)
    assert priorities[0].value != priorities[1].value
    peerings = find(objects, "KopfPeering", "kubestream")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert find(objects, "ClusterKopfPeering") == []

    # The NetworkPolicy isolates the operator pods, on ports they really have.
    policy = one(objects, "NetworkPolicy", OPERATOR)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in container(objects)["ports"]}
    for rule in policy["spec"]["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= port_names
    test_pod = one(objects, "Pod")
    allowed = policy["spec"]["ingress"][1]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= test_pod["metadata"]["labels"].items()

    # The jobs' PodMonitor selects driver and executor pods as the operator
    # builds them, on their metrics port, and not the operator's own pods.
    monitors = {m["metadata"]["name"]: m["spec"] for m in find(objects, "PodMonitor")}
    assert set(monitors) == {"ks-kubestream-jobs", OPERATOR}
    jobs = monitors["ks-kubestream-jobs"]
    assert jobs["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    job = JobRef("wordcount", "team-a", "uid-1")
    spec = parse_spec({"image": "app:1", "application": {"module": "app", "function": "build"}})
    https = replace(spec, ui=replace(spec.ui, operator_tls=True))
    (endpoint,) = jobs["podMetricsEndpoints"]
    job_pod_labels = set()
    pods = (
        build_driver_pod(job, spec, "k"),
        build_driver_pod(job, https, "k"),
        build_executor_pod(job, spec, 0, "k"),
    )
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert selects(jobs["selector"], labels), labels
        assert endpoint["port"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        job_pod_labels |= {pod_label_meta(k) for k in labels}
    for relabel in endpoint["relabelings"]:
        assert set(relabel["sourceLabels"]) <= job_pod_labels, relabel
    # An HTTPS driver is scraped over HTTPS (its label becomes __scheme__), with a tlsConfig.
    (scheme,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "__scheme__"]
    label = pod_label_meta(UI_SCHEME_LABEL)
    assert scheme["sourceLabels"] == [label]
    assert re.fullmatch(scheme["regex"], pods[1]["metadata"]["labels"][UI_SCHEME_LABEL])
    assert UI_SCHEME_LABEL not in pods[0]["metadata"]["labels"]
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    assert not selects(jobs["selector"], pod_labels)
    operator_monitor = monitors[OPERATOR]
    assert selects(operator_monitor["selector"], pod_labels)
    assert operator_monitor["podMetricsEndpoints"][0]["port"] == "metrics"


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, In/Exists expressions) against labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def pod_label_meta(label: str) -> str:
    """Prometheus' Kubernetes discovery name of a pod label."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--set", "replicaCont=2"], "replicaCont"),
        (["--set", "operator.logLevle=DEBUG"], "logLevle"),
        (["--set", "podMonitor.enabeld=true"], "enabeld"),
        (["--set", "operator.logLevel=VERBOSE"], "/operator/logLevel"),
        (["--set", "replicaCount=0"], "/replicaCount"),
        (["--set", "image.tag=latest"], "image.tag"),
    ],
)
def test_a_misspelt_or_wrong_value_is_refused_naming_it(
    chart: Chart, args: list[str], named: str
) -> None:
    result = chart.run("template", "ks", str(chart.path), *args)
    assert result.returncode != 0, f"helm template {args} was accepted"
    assert named in result.stderr, result.stderr


def test_every_object_in_the_schema_is_closed() -> None:
    schema = json.loads((REPO / "charts" / "kubestream" / "values.schema.json").read_text())

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and path != "/properties/global":
                closed = node.get("additionalProperties")
                assert closed is False or isinstance(closed, dict), (
                    f"{path}: an object must set additionalProperties to false "
                    "(or to a typed schema for a free-form map)"
                )
            for key, child in node.items():
                walk(child, f"{path}/{key}")

    walk(schema, "")
    values = yaml.safe_load((REPO / "charts" / "kubestream" / "values.yaml").read_text())
    assert set(values) == set(schema["properties"]) - {"global"}


def test_every_value_is_documented() -> None:
    """Each value in values.yaml has a comment above it, or above the section holding it."""
    schema = json.loads((REPO / "charts" / "kubestream" / "values.schema.json").read_text())
    lines = (REPO / "charts" / "kubestream" / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, dict[str, Any], bool]] = [(-1, schema, False)]
    undocumented = []
    for i, line in enumerate(lines):
        match = re.match(r"^( *)([\w-]+):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack[-1][0] >= indent:
            stack.pop()
        _, parent, parent_documented = stack[-1]
        node = parent.get("properties", {}).get(key)
        if node is None:  # an entry of a free-form map (labels, selectors)
            continue
        node = resolve(schema, node)
        documented = parent_documented or lines[i - 1].lstrip().startswith("#")
        stack.append((indent, node, documented))
        if "properties" not in node and not documented:
            undocumented.append(key)
    assert undocumented == []


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    found: dict[str, Any] = schema["definitions"][ref.rsplit("/", 1)[1]]
    return found


def test_dashboard_uses_the_runtimes_metrics_and_the_monitors_labels(chart: Chart) -> None:
    objects = chart.template("--set", "podMonitor.enabled=true")
    config_map = one(objects, "ConfigMap", "ks-kubestream-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["kubestream-jobs.json"])
    titles = {p["title"] for p in dashboard["panels"]}
    assert {
        "Input rate",
        "Scheduling delay",
        "Total delay",
        "Processing time",
        "Executors",
    } <= titles

    source = "".join(p.read_text() for p in (REPO / "runtime" / "kubestream").rglob("metrics.py"))
    relabels = one(objects, "PodMonitor", "ks-kubestream-jobs")["spec"]["podMetricsEndpoints"][0]
    series_labels = {r["targetLabel"] for r in relabels["relabelings"]} | {"namespace"}
    operator_series = operator_metrics()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            operator = re.findall(r"\bkubestream_operator_\w+", expr)
            for metric in operator:
                assert metric in operator_series, f"{panel['title']}: the operator has no {metric}"
                for group in re.findall(r"by \(([^)]*)\)", expr):
                    labels = {g.strip() for g in group.split(",")}
                    assert labels <= operator_series[metric], f"{panel['title']}: {labels}"
            if operator:
                continue
            for metric in re.findall(r"\bkubestream_\w+", expr):
                if metric in series_labels:
                    continue
                name = re.sub(r"_(bucket|sum|count|total)$", "", metric).removeprefix("kubestream_")
                assert f'"{name}"' in source, f"{panel['title']}: {metric} is in no metrics.py"
            for group in re.findall(r"by \(([^)]*)\)", expr):
                labels = {g.strip() for g in group.split(",")} - {"le"}
                assert labels <= series_labels, f"{panel['title']}: {labels - series_labels}"


def operator_metrics() -> dict[str, set[str]]:
    """The series the operator exports, with their labels: its registry after one of
    everything it counts (a labelled counter has no series before its first count)."""
    registry = CollectorRegistry()
    metrics = OperatorMetrics(registry)
    metrics.reconciles.inc()
    metrics.errors.labels("api").inc()
    metrics.driver_restarts.inc()
    metrics.autoscaler_decisions.labels("none", "STEADY").inc()
    return {s.name: set(s.labels) for m in registry.collect() for s in m.samples}


def test_the_dashboard_shows_the_autoscalers_decisions(chart: Chart) -> None:
    objects = chart.template()
    config_map = one(objects, "ConfigMap", "ks-kubestream-dashboard")
    dashboard = json.loads(config_map["data"]["kubestream-jobs.json"])
    panel = next(p for p in dashboard["panels"] if p["title"] == "Autoscaler decisions")
    (target,) = panel["targets"]
    assert "kubestream_operator_autoscaler_decisions_total" in target["expr"]
    assert "kubestream_operator_autoscaler_decisions_total" in operator_metrics()
