"""Seconds from deleting the namespace of a running job to the namespace being gone.

Starts the real control plane (hack/control-plane.sh: etcd, kube-apiserver,
kube-controller-manager with its namespace controller), the operator with its
least-privilege RBAC, and for each round a fresh namespace with a running job,
then deletes the namespace and times it. Writes JSON.

.venv/bin/python benchmarks/namespace_deletion.py [--rounds 3]
    [--out benchmarks/results/namespace_deletion.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.operator.harness import Kube, OperatorProcess, wait_for  # noqa: E402
from tests.operator.test_lifecycle import job_manifest, run_all  # noqa: E402

GRACE = 5


def last_line(*args: str) -> str:
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def operator_kubeconfig(kube: Kube, where: Path) -> Path:
    token = kube.kubectl(
        "create", "token", "kubestream-operator", "-n", "kubestream-system", "--duration=1h"
    ).stdout.strip()
    cfg = yaml.safe_load(kube.kubeconfig.read_text())
    cfg["users"] = [{"name": "admin", "user": {"token": token}}]
    path = where / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def one_round(kube: Kube, kubeconfig: Path, where: Path) -> dict[str, Any]:
    namespace = f"bench-{secrets.token_hex(4)}"
    kube.kubectl("create", "namespace", namespace)
    operator = OperatorProcess(kubeconfig, namespace, where / f"{namespace}.log")
    operator.start()
    try:
        kube.apply(namespace, job_manifest(gracefulStopTimeoutSeconds=GRACE))
        wait_for(lambda: len(kube.pods(namespace)) == 3, "3 pods")
        run_all(kube, namespace)
        wait_for(lambda: kube.status(namespace, "wc").get("phase") == "Running", "Running")
        started = time.monotonic()
        kube.kubectl("delete", "namespace", namespace, "--wait=false")

        def gone() -> bool:
            try:
                kube.core.read_namespace(namespace)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for(gone, "the namespace gone", timeout=300)
        seconds = time.monotonic() - started
    finally:
        operator.stop()
    log = operator.log.read_text(errors="replace")
    return {
        "seconds": round(seconds, 2),
        "operator_error_lines": sum(" ERROR " in line for line in log.splitlines()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/namespace_deletion.json"
    )
    args = parser.parse_args()
    where = Path(tempfile.mkdtemp(prefix="kubestream-ns-bench-"))
    script = str(ROOT / "hack" / "control-plane.sh")
    kubeconfig = Path(last_line(script, "up", str(where / "cp")).split("=", 1)[1])
    try:
        kubectl = Path(last_line(str(ROOT / "hack" / "build-kube.sh"), "kubectl")) / "kubectl"
        kube = Kube(kubeconfig, str(kubectl))
        kube.kubectl("apply", "-f", str(ROOT / "crds"))
        kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        kube.kubectl("apply", "-f", str(ROOT / "deploy" / "rbac"))
        op_config = operator_kubeconfig(kube, where)
        rounds = [one_round(kube, op_config, where) for _ in range(args.rounds)]
    finally:
        subprocess.run([script, "down", str(where / "cp")], capture_output=True, check=False)
    seconds = [r["seconds"] for r in rounds]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "graceful_stop_seconds": GRACE,
        "rounds": rounds,
        "median_seconds": statistics.median(seconds),
        "max_seconds": max(seconds),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
