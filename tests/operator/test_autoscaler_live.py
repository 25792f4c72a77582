"""The autoscaler on the real control plane with a real driver and executors.

As in test_driver_live: a real ``kubestream driver`` and executor processes on a
loopback address with the job's keys; the test plays the kubelet, starting an
executor process for each executor pod the operator creates. An idle job scales
down through the drain path around the executor that holds its receiver, keeps
its cooldown across an operator restart and yields to a ``kubectl scale``. A job
under more load than one executor can take scales up, works its backlog off, and
when the load drops scales down by draining, with output exact against a
plain-Python count and no failed task.
"""

import ast
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from kubestream_operator.plan import executor_ids, parse_executor_ids
from tests.operator.harness import REPO, Kube, OperatorProcess, free_port, wait_for
from tests.operator.test_driver_live import (
    UI_PORT,
    driver_status,
    events,
    job_keys,
    loopback_with_free_ui_port,
)
from tests.operator.test_lifecycle import job_manifest

pytestmark = pytest.mark.integration


def autoscaler(kube: Kube, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.status(namespace, "wc").get("autoscaler") or {}
    return found


def replicas(kube: Kube, namespace: str) -> int:
    return int((kube.job(namespace, "wc") or {})["spec"]["executors"]["replicas"])


def scrape(url: str) -> dict[str, float]:
    """A /metrics page as {series: value}; empty while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


class Processes:
    """A job's driver and executor processes on one loopback address, as a kubelet runs
    its pods: ``run_pods`` starts a process for every executor pod not started yet."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.host = loopback_with_free_ui_port()
        self.driver_port = free_port()
        self.env: dict[str, str] = {}
        self.executors: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports: dict[str, int] = {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, log: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.tmp / log).open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kubestream", *args],
                env=self.env,
                stdout=out,
                stderr=out,
            )
        self.procs.append(proc)
        return proc

    def start_driver(self, keys: dict[str, str], app: Path, args: str, interval: float) -> None:
        self.env = dict(os.environ, **keys)
        self._spawn(
            "driver.log",
            "driver",
            "--app",
            str(app),
            "--app-args",
            args,
            "--host",
            self.host,
            "--driver-port",
            str(self.driver_port),
            "--ui-port",
            str(UI_PORT),
            "--batch-interval",
            str(interval),
        )

    def start_executor(self, eid: str) -> subprocess.Popen[bytes]:
        port = self.metrics_ports[eid] = free_port()
        self.executors[eid] = self._spawn(
            f"executor-{eid}.log",
            "executor",
            "--driver-host",
            self.host,
            "--driver-port",
            str(self.driver_port),
            "--advertise-host",
            self.host,
            "--block-host",
            self.host,
            "--block-port",
            "0",
            "--metrics-port",
            str(port),
            "--executor-id",
            eid,
        )
        return self.executors[eid]

    def run_pods(self, kube: Kube, namespace: str) -> None:
        """Start the executor pods' processes and mark them (and the driver) Running."""
        for name, pod in kube.pods(namespace).items():
            if pod.status.phase == "Running":
                continue
            if pod.metadata.labels["kubestream.io/role"] == "executor":
                eid = pod.metadata.labels["kubestream.io/executor-id"]
                if eid not in self.executors:
                    self.start_executor(eid)
                kube.act_as_kubelet_set_pod_phase(namespace, name, "Running")
            else:
                kube.act_as_kubelet_set_pod_phase(namespace, name, "Running", pod_ip=self.host)

    def tasks(self, eid: str, state: str) -> float:
        """Tasks executor ``eid`` ran with outcome ``state``, from its own /metrics."""
        found = scrape(f"http://{self.host}:{self.metrics_ports[eid]}/metrics")
        return found.get(f'kubestream_executor_tasks_total{{state="{state}"}}', 0.0)

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    found = Processes(tmp_path)
    yield found
    found.stop()


class Kubelet:
    """Plays the kubelet in the background while the autoscaler adds executor pods."""

    def __init__(self, kube: Kube, namespace: str, processes: Processes) -> None:
        self.stopped = threading.Event()
        self.errors: list[BaseException] = []

        def loop() -> None:
            while not self.stopped.wait(0.5):
                try:
                    processes.run_pods(kube, namespace)
                except ApiException as err:
                    if err.status != 404:  # 404: a pod deleted between list and patch
                        self.errors.append(err)

        self.thread = threading.Thread(target=loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


def test_autoscaler_drains_an_idle_executor_keeps_its_cooldown_and_yields_to_kubectl_scale(
    kube: Kube, namespace: str, operator: OperatorProcess, processes: Processes, tmp_path: Path
) -> None:
    """Executor 1 holds the receiver, so the decision removes executor 0, and the
    operator drains exactly that one (not the highest-numbered, as a plain scale-down)."""
    kube.apply(
        namespace,
        job_manifest(
            gracefulStopTimeoutSeconds=60,
            executors={"replicas": 2, "min": 1, "max": 4},
            autoscaling={
                "enabled": True,
                "stabilizationWindowSeconds": 2,
                "scaleDownCooldownSeconds": 600,
            },
        ),
    )
    (tmp_path / "spool").mkdir()
    processes.start_driver(
        job_keys(kube, namespace, "wc"),
        REPO / "examples" / "spool_receiver.py",
        f"--spool {tmp_path / 'spool'} --out {tmp_path / 'out'}",
        0.5,
    )
    host = processes.host
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)
    # Executor 1 starts first and gets the receiver; then executor 0.
    processes.start_executor("1")
    wait_for(
        lambda: [r.get("executor_id") for r in driver_status(host).get("receivers") or []] == ["1"],
        "the receiver on executor 1",
        timeout=90,  # Python processes starting on a loaded machine
    )
    processes.run_pods(kube, namespace)
    executors = processes.executors
    wait_for(
        lambda: len(driver_status(host).get("executors") or []) == 2,
        "both executors registered",
        timeout=90,
    )
    action = wait_for(
        lambda: autoscaler(kube, namespace).get("lastAction"),
        "the autoscaler's first action",
        timeout=90,
    )
    assert (action["action"], action["reason"], action["from"], action["to"]) == (
        "down",
        "UNDERLOAD",
        2,
        1,
    )
    assert action["applied"] is True
    assert action["removeExecutors"] == ["0"]
    assert replicas(kube, namespace) == 1
    annotations = (kube.job(namespace, "wc") or {})["metadata"]["annotations"]
    assert annotations["kubestream.io/autoscaler-replicas"] == "1"
    assert annotations["kubestream.io/removed-executors"] == "0"
    # The drain path: the driver drains executor 0, then its pod goes; 1 keeps the receiver.
    wait_for(
        lambda: driver_status(host).get("decommissions") == {"0": "decommissioned"},
        "the driver to decommission executor 0",
    )
    assert executors["0"].wait(timeout=30) == 0
    wait_for(lambda: list(kube.pods(namespace, "executor")) == ["wc-executor-1"], "1 executor")
    assert [r["executor_id"] for r in driver_status(host)["receivers"]] == ["1"]
    # The Events follow the pod's deletion in the same pass, a moment later.
    found = wait_for(
        lambda: (e := events(kube, namespace, "wc")).get("ExecutorRemoved") and e, "the Events"
    )
    assert found["AutoscaledDown"].startswith("2 -> 1 executors (UNDERLOAD): processing ratio")
    assert (
        found["ExecutorRemoved"]
        == "scaled down: deleting executor pod wc-executor-0 after draining"
    )
    evaluation = wait_for(
        lambda: (
            (e := autoscaler(kube, namespace).get("lastEvaluation") or {}).get("reason") == "AT_MIN"
            and e
        ),
        "an evaluation at executors.min",
    )
    assert evaluation["inputs"]["activeExecutors"] == 1
    assert evaluation["inputs"]["processingRatio"] < 0.3

    # A new operator process reads the cooldown from the job's status.
    kept = autoscaler(kube, namespace)["state"]["lastScaleDown"]
    operator.stop()
    before = autoscaler(kube, namespace)["lastEvaluation"]["time"]
    operator.start()
    wait_for(
        lambda: autoscaler(kube, namespace)["lastEvaluation"]["time"] > before,
        "an evaluation by the restarted operator",
    )
    assert autoscaler(kube, namespace)["state"]["lastScaleDown"] == kept

    # kubectl scale pins the count: the autoscaler records, and changes nothing.
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=2")
    wait_for(lambda: autoscaler(kube, namespace).get("pinned") is True, "the pin")
    # Events are posted after the status in the same pass.
    wait_for(lambda: "AutoscalerPinned" in events(kube, namespace, "wc"), "AutoscalerPinned")
    pinned_at = autoscaler(kube, namespace)["lastEvaluation"]["time"]
    wait_for(
        lambda: autoscaler(kube, namespace)["lastEvaluation"]["time"] > pinned_at,
        "an evaluation after the pin",
    )
    assert replicas(kube, namespace) == 2
    # The second executor takes the next id: 0 stays left out until the autoscaler acts.
    assert sorted(kube.pods(namespace, "executor")) == ["wc-executor-1", "wc-executor-2"]
    assert executors["1"].poll() is None

    # Turning autoscaling off forgets its state; the count stays where it is.
    kube.patch_spec(namespace, "wc", {"autoscaling": {"enabled": False}})
    wait_for(lambda: "autoscaler" not in kube.status(namespace, "wc"), "status.autoscaler cleared")
    assert replicas(kube, namespace) == 2


class Feeder:
    """Writes word files into the job's input directory at a settable rate, counting
    every word it writes (the plain-Python reference)."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "in"
        self.staging = tmp / "staging"
        self.dir.mkdir()
        self.staging.mkdir()
        self.written: Counter[str] = Counter()
        self.files_per_second, self.lines = 0, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def set(self, files_per_second: int, lines: int) -> None:
        self.files_per_second, self.lines = files_per_second, lines

    def _run(self) -> None:
        n = 0
        while not self.stopped.wait(1.0 / max(self.files_per_second, 1)):
            if not self.files_per_second:
                continue
            words = [f"w{(n * 7 + i) % 13} v{i % 5}" for i in range(self.lines)]
            staged = self.staging / f"f{n:06d}.txt"
            staged.write_text("\n".join(words) + "\n")
            staged.rename(self.dir / staged.name)  # whole, or not at all
            self.written.update(w for line in words for w in line.split())
            n += 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def counted(out: Path) -> Counter[str]:
    """The job's output so far: every batch's ('word', count) lines, summed."""
    total: Counter[str] = Counter()
    for part in out.parent.glob(f"{out.name}-*/part-*"):
        for line in part.read_text().splitlines():
            word, count = ast.literal_eval(line)
            total[word] += count
    return total


def newest_delay(host: str) -> float | None:
    """Scheduling delay of the newest completed batch, when no batch waits."""
    try:
        with urllib.request.urlopen(f"http://{host}:{UI_PORT}/api/v1/status?batches=5") as r:
            doc = json.load(r)
    except OSError:
        return None
    if doc["summary"]["pending_batches"]:
        return None
    done = [b for b in doc["batches"] if b["state"] == "completed"]
    return float(done[0]["scheduling_delay"]) if done else None


@pytest.mark.timeout(900)
def test_load_one_executor_cannot_take_scales_up_then_drains_back_losing_nothing(
    kube: Kube, namespace: str, operator: OperatorProcess, processes: Processes, tmp_path: Path
) -> None:
    interval = 1.0
    kube.apply(
        namespace,
        job_manifest(
            gracefulStopTimeoutSeconds=60,
            executors={"replicas": 1, "min": 1, "max": 4},
            autoscaling={
                "enabled": True,
                "stabilizationWindowSeconds": 5,
                "scaleUpCooldownSeconds": 5,
                "scaleDownCooldownSeconds": 15,
                "catchUpSeconds": 20,
            },
        ),
    )
    feeder = Feeder(tmp_path)
    out = tmp_path / "out" / "counts"
    processes.start_driver(
        job_keys(kube, namespace, "wc"),
        REPO / "tests" / "operator" / "slow_wordcount.py",
        f"--dir {feeder.dir} --out {out} --seconds-per-line 0.01",
        interval,
    )
    host = processes.host
    wait_for(lambda: len(kube.pods(namespace)) == 2, "driver and 1 executor pod")
    kubelet = Kubelet(kube, namespace, processes)
    try:
        wait_for(
            lambda: len(driver_status(host).get("executors") or []) == 1,
            "executor 0 registered",
            timeout=90,  # Python processes starting on a loaded machine
        )
        # 4 files a second of 30 lines at 10 ms a line: 1.2 s of work a second for one
        # executor; each file is a task of its batch, so more executors share it.
        feeder.set(4, 30)
        step = time.monotonic()
        up = wait_for(
            lambda: (
                (a := autoscaler(kube, namespace).get("lastAction") or {}).get("action") == "up"
                and a
            ),
            "the autoscaler to scale up",
            timeout=180,
        )
        to_up = time.monotonic() - step
        assert up["applied"] is True and up["from"] == 1 and up["to"] >= 2, up
        assert up["reason"] in ("BACKLOG", "OVERLOAD"), up
        target = up["to"]
        assert "AutoscaledUp" in events(kube, namespace, "wc")
        wait_for(
            lambda: len(driver_status(host).get("executors") or []) == target,
            f"{target} executors registered",
            timeout=120,
        )
        added = [str(i) for i in range(1, target)]
        # The added executors run tasks, and the backlog is worked off.
        wait_for(
            lambda: all(processes.tasks(eid, "finished") > 0 for eid in added),
            "tasks on every added executor",
        )
        to_task = time.monotonic() - step
        wait_for(
            lambda: (d := newest_delay(host)) is not None and d < interval,
            "the scheduling delay back under one batch interval",
            timeout=180,
        )
        # Load drops: the autoscaler drains what it no longer needs.
        feeder.set(1, 3)
        down = wait_for(
            lambda: (
                (a := autoscaler(kube, namespace).get("lastAction") or {}).get("action") == "down"
                and a
            ),
            "the autoscaler to scale down",
            timeout=240,
        )
        assert down["applied"] is True and down["reason"] == "UNDERLOAD", down
        removed = down["removeExecutors"]
        assert len(removed) == down["from"] - down["to"], down
        job = kube.job(namespace, "wc") or {}
        annotations = job["metadata"]["annotations"]
        skip = parse_executor_ids(annotations.get("kubestream.io/removed-executors"))
        kept = [f"wc-executor-{i}" for i in executor_ids(down["to"], skip)]
        assert not {f"wc-executor-{r}" for r in removed} & set(kept)
        for eid in removed:
            assert processes.executors[eid].wait(timeout=120) == 0, f"executor {eid} drained"
        wait_for(lambda: sorted(kube.pods(namespace, "executor")) == sorted(kept), "kept pods")
        for pod in kept:
            eid = pod.rsplit("-", 1)[1]
            assert processes.executors[eid].poll() is None, f"{pod} is kept running"
            assert processes.tasks(eid, "failed") == 0.0
        feeder.stop()
        wait_for(lambda: counted(out) == feeder.written, "every word counted", timeout=120)
        doc = driver_status(host)
        assert doc["totals"]["failed"] == 0
        retries = scrape(f"http://{host}:{UI_PORT}/metrics").get("kubestream_task_retries_total")
        assert retries == 0.0
        decisions = scrape(f"http://127.0.0.1:{operator.metrics_port}/metrics")
        assert any(re.search(r'action="up"', k) and v >= 1 for k, v in decisions.items())
        assert any(re.search(r'action="down"', k) and v >= 1 for k, v in decisions.items())
    finally:
        feeder.stop()
        kubelet.stop()
    assert kubelet.errors == []
    # The numbers, for the record (polled: within a second or two).
    print(f"load step -> scale-up {to_up:.0f} s, -> tasks on every added executor {to_task:.0f} s")
    print(json.dumps({"up": up, "down": down}, indent=1))


def refused(kube: Kube, namespace: str, manifest: dict[str, Any]) -> str:
    """kubectl apply's complaint about ``manifest``; fails if the API server takes it."""
    result = kube.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False, stdin=json.dumps(manifest)
    )
    assert result.returncode != 0, "the API server accepted it"
    return result.stderr


def test_api_server_checks_and_defaults_the_autoscaling_policy(kube: Kube, namespace: str) -> None:
    assert 'spec.autoscaling.mode: Unsupported value: "Sometimes"' in refused(
        kube, namespace, job_manifest(autoscaling={"mode": "Sometimes"})
    )
    assert (
        "autoscaling.targetUtilization must lie between scaleDownThreshold and scaleUpThreshold"
        in refused(kube, namespace, job_manifest(autoscaling={"targetUtilization": 0.9}))
    )
    assert kube.job(namespace, "wc") is None
    kube.apply(namespace, job_manifest(autoscaling={"enabled": True}))
    policy = (kube.job(namespace, "wc") or {})["spec"]["autoscaling"]
    assert policy["mode"] == "Act"
    assert (policy["catchUpSeconds"], policy["maxStepPercent"]) == (300, 100)
    assert "targetUtilization" not in policy  # 0.7 inside the default band, or its middle
