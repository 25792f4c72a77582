"""Test harness for the operator: a client on the real control plane, the
operator as a real process, and the kubelet's part played through the API.

There is no kubelet (and no scheduler) on the test control plane, so pods never
run by themselves; ``act_as_kubelet_set_pod_phase`` writes the pod status the way
a kubelet would, through the status subresource.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(fn: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Kube:
    """Admin access to the test control plane, through the client and kubectl."""

    kubeconfig: Path
    kubectl_bin: str

    def __post_init__(self) -> None:
        self.api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.networking = client.NetworkingV1Api(self.api)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args],
            check=False,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def apply(self, namespace: str, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(manifest))

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                "kubestream.io", "v1alpha1", namespace, "streamingjobs", name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        job = self.job(namespace, name) or {}
        status: dict[str, Any] = job.get("status") or {}
        return status

    def condition(self, namespace: str, name: str, kind: str) -> dict[str, Any]:
        for cond in self.status(namespace, name).get("conditions") or []:
            if cond["type"] == kind:
                return dict(cond)
        return {}

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            "kubestream.io", "v1alpha1", namespace, "streamingjobs", name, {"spec": spec}
        )

    def pods(self, namespace: str, role: str | None = None) -> dict[str, Any]:
        selector = "app.kubernetes.io/managed-by=kubestream-operator"
        if role:
            selector += f",kubestream.io/role={role}"
        items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return {p.metadata.name: p for p in items if p.metadata.deletion_timestamp is None}

    def event_reasons(self, namespace: str, name: str) -> list[str]:
        events = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=StreamingJob"
        ).items
        return [e.reason for e in sorted(events, key=lambda e: e.metadata.creation_timestamp)]

    def act_as_scheduler_bind(self, namespace: str, name: str, node: str) -> None:
        """Bind a pod to a node, so deleting it waits for that node's kubelet to confirm."""
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.core.create_namespaced_pod_binding(name, namespace, body, _preload_content=False)

    def act_as_kubelet_finish_termination(self, namespace: str, name: str) -> None:
        """The kubelet's last step once a terminating container is gone."""
        self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def act_as_kubelet_set_pod_phase(
        self,
        namespace: str,
        name: str,
        phase: str,
        exit_code: int | None = None,
        pod_ip: str | None = None,
    ) -> None:
        """Write pod status as a kubelet would: phase, Ready, container state, pod IP."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        pod = self.core.read_namespaced_pod(name, namespace)
        container = pod.spec.containers[0]
        running = phase == "Running"
        if running:
            state: dict[str, Any] = {"running": {"startedAt": now}}
        elif phase in ("Failed", "Succeeded"):
            code = exit_code if exit_code is not None else (1 if phase == "Failed" else 0)
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Error" if code else "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        ready = "True" if running else "False"
        status = {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now}],
            "containerStatuses": [
                {
                    "name": container.name,
                    "image": container.image,
                    "imageID": "",
                    "ready": running,
                    "restartCount": 0,
                    "started": running,
                    "state": state,
                }
            ],
        }
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
        self.core.patch_namespaced_pod_status(name, namespace, {"status": status})


class OperatorProcess:
    """``kubestream operator`` for one namespace, as a real process."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log = log
        self.extra = extra
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "operator"), str(REPO / "runtime")])
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kubestream",
                    "operator",
                    "--namespace",
                    self.namespace,
                    "--resync-seconds",
                    "1",
                    "--metrics-port",
                    str(self.metrics_port),
                    "--liveness-port",
                    str(self.liveness_port),
                    *self.extra,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: the operator gets no chance to finish what it was doing."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
