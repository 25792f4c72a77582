"""Runs the pinned helm on charts/kubestream and reads what it renders."""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Chart:
    helm: Path
    path: Path

    def run(self, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``helm ARGS``; the caller checks the exit code (a refusal is sometimes the point)."""
        cmd = [str(self.helm), *args]
        if kubeconfig is not None:
            cmd += ["--kubeconfig", str(kubeconfig)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def template_text(self, *args: str, release: str = "ks", namespace: str = "ks-system") -> str:
        result = self.run("template", release, str(self.path), "--namespace", namespace, *args)
        assert result.returncode == 0, f"helm template {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout

    def template(
        self, *args: str, release: str = "ks", namespace: str = "ks-system"
    ) -> list[Manifest]:
        """The rendered objects, CRDs first when ``--include-crds`` is given."""
        text = self.template_text(*args, release=release, namespace=namespace)
        return [doc for doc in yaml.safe_load_all(text) if doc]


def non_default(*watch: str) -> list[str]:
    """Values away from every default: namespaced, two peers, NetworkPolicy and PodMonitors."""
    return [
        "--set", f"watchNamespaces={{{','.join(watch)}}}",
        "--set", "networkPolicy.enabled=true",
        "--set", "podMonitor.enabled=true",
        "--set", "replicaCount=2",
    ]  # fmt: skip


def find(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = find(objects, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def rule_set(rules: list[Manifest]) -> set[tuple[str, str, str]]:
    """RBAC rules as (apiGroup, resource, verb) triples, however they are grouped."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
