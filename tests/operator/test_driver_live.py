"""The operator reads a real kubestream driver's status into the job's columns.

A real ``kubestream driver`` and ``kubestream executor`` run on a loopback
address; playing the kubelet, the test gives the driver pod that address as its
pod IP, as a kubelet would once the container runs.
"""

import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestream_operator.keys import curve_keypair
from tests.operator.harness import REPO, Kube, OperatorProcess, free_port, wait_for
from tests.operator.test_lifecycle import job_manifest

pytestmark = pytest.mark.integration

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


@pytest.fixture
def running_driver(tmp_path: Path) -> Iterator[str]:
    """A driver (word count over an input directory) and one executor; yields the driver's IP."""
    host = loopback_with_free_ui_port()
    public, secret = curve_keypair()
    env = dict(os.environ, KUBESTREAM_CURVE_PUBLIC_KEY=public, KUBESTREAM_CURVE_SECRET_KEY=secret)
    driver_port = free_port()
    (tmp_path / "in").mkdir()
    kubestream = [sys.executable, "-m", "kubestream"]
    logs = [(tmp_path / name).open("wb") for name in ("driver.log", "executor.log")]
    procs = [
        subprocess.Popen(
            [
                *kubestream,
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
            ],
            env=env,
            stdout=logs[0],
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                *kubestream,
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
                "exec-0",
            ],
            env=env,
            stdout=logs[1],
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        yield host
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
        for log in logs:
            log.close()
        for log in logs:
            log.close()


def test_batch_delay_and_last_batch_come_from_the_running_driver(
    kube: Kube, namespace: str, operator: OperatorProcess, running_driver: str
) -> None:
    kube.apply(namespace, job_manifest())
    wait_for(lambda: "wc-driver" in kube.pods(namespace), "driver pod")
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=running_driver)
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
