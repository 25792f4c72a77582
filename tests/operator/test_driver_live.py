"""The operator against a real kubestream driver: its status, and drains on scale-down.

A real ``kubestream driver`` and ``kubestream executor`` processes run on a
loopback address with the job's own CURVE keys, read from the Secret the
operator made; playing the kubelet, the test gives the driver pod that address
as its pod IP, as a kubelet would once the container runs.
"""

import base64
import json
import os
import random
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestream.driver.api_auth import read_token
from tests.operator.harness import REPO, Kube, OperatorProcess, free_port, wait_for
from tests.operator.test_lifecycle import job_manifest, run_all

UI_PORT = 4040


def loopback_with_free_ui_port() -> str:
    for _ in range(50):
        host = f"127.0.{random.randint(1, 254)}.{random.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((host, UI_PORT))
            except OSError:
                continue
            return host
    pytest.fail("no loopback address with a free port 4040")


def job_keys(kube: Kube, namespace: str, job: str) -> dict[str, str]:
    secret = wait_for(
        lambda: (
            kube.core.list_namespaced_secret(
                namespace, field_selector=f"metadata.name={job}-curve"
            ).items
        ),
        "the job's key Secret",
    )[0]
    return {
        f"KUBESTREAM_CURVE_{kind.upper()}_KEY": base64.b64decode(
            secret.data[f"curve-{kind}-key"]
        ).decode()
        for kind in ("public", "secret")
    }


def driver_status(host: str, token: str = "") -> dict[str, Any]:
    """The driver's status document (``token``: the read token); empty while it does not
    answer yet."""
    request = urllib.request.Request(
        f"http://{host}:{UI_PORT}/api/v1/status?batches=0",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(request) as r:
            doc: dict[str, Any] = json.load(r)
    except OSError:
        return {}
    return doc


Start = Callable[..., tuple[str, dict[str, subprocess.Popen[bytes]]]]


@pytest.fixture
def start_job_processes(tmp_path: Path) -> Iterator[Start]:
    """Starts a driver (word count over an input directory; ``driver_flags`` added to its
    command) and executors with given ids."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        keys: dict[str, str], executor_ids: list[str], *driver_flags: str
    ) -> tuple[str, dict[str, subprocess.Popen[bytes]]]:
        host = loopback_with_free_ui_port()
        env = dict(os.environ, **keys)
        driver_port = free_port()
        (tmp_path / "in").mkdir()
        kubestream = [sys.executable, "-m", "kubestream"]

        def spawn(log: str, *args: str) -> subprocess.Popen[bytes]:
            with (tmp_path / log).open("wb") as out:
                proc = subprocess.Popen([*kubestream, *args], env=env, stdout=out, stderr=out)
            procs.append(proc)
            return proc

        spawn(
            "driver.log",
            "driver",
            "--app",
            str(REPO / "examples" / "wordcount.py"),
            "--app-args",
            f"--dir {tmp_path / 'in'}",
            "--host",
            host,
            "--driver-port",
            str(driver_port),
            "--ui-port",
            str(UI_PORT),
            "--batch-interval",
            "0.5",
            *driver_flags,
        )
        executors = {
            eid: spawn(
                f"executor-{eid}.log",
                "executor",
                "--driver-host",
                host,
                "--driver-port",
                str(driver_port),
                "--advertise-host",
                host,
                "--block-host",
                host,
                "--block-port",
                "0",
                "--metrics-port",
                "0",
                "--executor-id",
                eid,
            )
            for eid in executor_ids
        }
        return host, executors

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def events(kube: Kube, namespace: str, job: str) -> dict[str, str]:
    """The job's Events, reason -> message of the latest."""
    found = kube.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={job},involvedObject.kind=StreamingJob"
    ).items
    return {e.reason: e.message for e in sorted(found, key=lambda e: e.metadata.creation_timestamp)}


def test_batch_delay_and_last_batch_come_from_the_running_driver(
    kube: Kube, namespace: str, operator: OperatorProcess, start_job_processes: Start
) -> None:
    kube.apply(namespace, job_manifest())
    host, _ = start_job_processes(job_keys(kube, namespace, "wc"), ["exec-0"])
    wait_for(lambda: "wc-driver" in kube.pods(namespace), "driver pod")
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)
    status = wait_for(
        lambda: (
            (s := kube.status(namespace, "wc")).get("batchDelay") and s.get("lastBatchTime") and s
        ),
        "batch delay and last batch time in the job's status",
    )
    assert status["batchDelay"].endswith("s")
    row = kube.kubectl("get", "sj", "wc", "-n", namespace, "--no-headers").stdout.split()
    assert row[1] == "Running"
    assert row[3] == status["batchDelay"]


def test_scale_down_drains_the_executor_through_the_driver_before_deleting_its_pod(
    kube: Kube, namespace: str, operator: OperatorProcess, start_job_processes: Start
) -> None:
    """Reading is closed too (spec.ui.readAccess: token): the operator reads the driver's
    executors with the read token from the job's Secret and drains with the change token."""
    kube.apply(namespace, job_manifest(gracefulStopTimeoutSeconds=60, ui={"readAccess": "token"}))
    keys = job_keys(kube, namespace, "wc")
    token = read_token(keys["KUBESTREAM_CURVE_SECRET_KEY"])
    host, executors = start_job_processes(
        {**keys, "KUBESTREAM_UI_READ_ACCESS": "token"}, ["0", "1"]
    )
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    run_all(kube, namespace)
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)
    wait_for(lambda: driver_status(host, token), "the driver's status, with the read token")
    assert driver_status(host) == {}  # refused without it
    wait_for(
        lambda: len(driver_status(host, token).get("executors") or []) == 2,
        "both executors registered",
        timeout=30,
    )
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=1")
    wait_for(lambda: "ExecutorDraining" in events(kube, namespace, "wc"), "ExecutorDraining")
    wait_for(
        lambda: driver_status(host, token).get("decommissions") == {"1": "decommissioned"},
        "the driver to decommission executor 1",
    )
    assert executors["1"].wait(timeout=30) == 0
    wait_for(lambda: list(kube.pods(namespace, "executor")) == ["wc-executor-0"], "1 executor")
    # The Event follows the pod's deletion in the same pass, a moment later.
    removed = wait_for(lambda: events(kube, namespace, "wc").get("ExecutorRemoved"), "the Event")
    assert removed == "scaled down: deleting executor pod wc-executor-1 after draining"
    assert executors["0"].poll() is None
    assert kube.status(namespace, "wc").get("drainingExecutors") is None


def test_scale_down_deletes_without_draining_when_the_driver_does_not_answer(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    kube.apply(namespace, job_manifest(gracefulStopTimeoutSeconds=60))
    wait_for(lambda: len(kube.pods(namespace)) == 3, "driver and 2 executor pods")
    run_all(kube, namespace)
    # Nothing listens there: the driver "runs" but does not answer.
    kube.act_as_kubelet_set_pod_phase(
        namespace, "wc-driver", "Running", pod_ip=loopback_with_free_ui_port()
    )
    wait_for(lambda: kube.status(namespace, "wc").get("phase") == "Running", "phase Running")
    kube.kubectl("scale", "-n", namespace, "sj/wc", "--replicas=1")
    # Well within the 60 s a drain may take: nothing waits for a driver that is not there.
    wait_for(lambda: list(kube.pods(namespace, "executor")) == ["wc-executor-0"], "1 executor", 20)
    found = events(kube, namespace, "wc")
    assert "ExecutorDraining" not in found
    assert found["ExecutorRemoved"] == (
        "scaled down: deleting executor pod wc-executor-1 without draining: "
        "the driver is not running or does not answer"
    )


def test_a_stalled_driver_makes_the_job_degraded_with_the_reason_and_an_event(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    start_job_processes: Start,
    tmp_path: Path,
) -> None:
    """A batch with a file to read and no executor to read it: the driver reports a stall
    (kind no_executors) after its stall timeout, and the operator shows it."""
    kube.apply(namespace, job_manifest())
    keys = job_keys(kube, namespace, "wc")
    host, _ = start_job_processes({**keys, "KUBESTREAM_STALL_TIMEOUT": "1"}, [])
    (tmp_path / "in" / "words.txt").write_text("to be or not to be\n")
    wait_for(lambda: "wc-driver" in kube.pods(namespace), "driver pod")
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)

    def degraded() -> dict[str, Any] | None:
        for cond in kube.status(namespace, "wc").get("conditions") or []:
            if cond["type"] == "Degraded" and cond["reason"] == "BatchStalled":
                return dict(cond)
        return None

    cond = wait_for(degraded, "the Degraded condition with reason BatchStalled")
    assert cond["status"] == "True"
    assert "stalled (no_executors)" in cond["message"], cond["message"]
    assert "no executor is registered" in cond["message"]
    reported = wait_for(lambda: events(kube, namespace, "wc").get("BatchStalled"), "the Event")
    assert "stalled (no_executors)" in reported
    assert keys["KUBESTREAM_CURVE_SECRET_KEY"] not in json.dumps(kube.status(namespace, "wc"))
