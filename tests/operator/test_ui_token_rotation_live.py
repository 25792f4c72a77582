"""Rotating a job's read and change tokens, against the real API server and a real
driver: the operator raises the token generation in the job's Secret when the
StreamingJob's kubestream.io/rotate-ui-tokens annotation changes, restarting no pod and
keeping the CURVE keys (so the checkpoint key); it drains executors both before the
pods' copy of the Secret is updated (with the previous generation's token) and after
(with the new one, the old one refused). No token in its log, Events or the status.

The test plays the kubelet: the generation file the driver and executors read stands
for their mounted copy of the Secret's ui-token-generation, updated when the test says.
"""

import base64
import os
from pathlib import Path

from kubestream.driver.api_auth import api_token, read_token
from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_driver_live import (  # noqa: F401  (start_job_processes is a fixture)
    Start,
    driver_status,
    events,
    job_keys,
    start_job_processes,
)
from tests.operator.test_lifecycle import job_manifest, run_all


def secret(kube: Kube, namespace: str) -> tuple[dict[str, str], dict[str, str]]:
    """The job Secret's data, decoded, and its annotations."""
    found = kube.core.read_namespaced_secret("wc-curve", namespace)
    data = {key: base64.b64decode(value).decode() for key, value in (found.data or {}).items()}
    return data, dict(found.metadata.annotations or {})


def kubelet_updates(path: Path, generation: str) -> None:
    staged = path.with_name("staged")
    staged.write_text(generation)
    os.replace(staged, path)


def drained(kube: Kube, namespace: str, host: str, token: str, executor: str) -> None:
    kube.kubectl("scale", "-n", namespace, "sj/wc", f"--replicas={executor}")
    wait_for(
        lambda: (
            (driver_status(host, token).get("decommissions") or {}).get(executor)
            == "decommissioned"
        ),
        f"the operator to drain executor {executor}",
    )
    wait_for(
        lambda: f"wc-executor-{executor}" not in kube.pods(namespace, "executor"),
        f"executor pod {executor} deleted",
    )


def test_rotated_ui_tokens_reach_the_running_driver_and_the_operator_still_drains(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    start_job_processes: Start,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube.apply(
        namespace,
        job_manifest(
            gracefulStopTimeoutSeconds=60,
            executors={"replicas": 3, "min": 1, "max": 4},
            ui={"readAccess": "token"},
        ),
    )
    keys = job_keys(kube, namespace, "wc")
    secret_key = keys["KUBESTREAM_CURVE_SECRET_KEY"]
    data, _ = secret(kube, namespace)
    assert data["ui-token-generation"] == "0"
    assert data["ui-read-token"] == read_token(secret_key, 0)
    generation_file = tmp_path / "ui-token-generation"
    generation_file.write_text(data["ui-token-generation"])
    env = {
        **keys,
        "KUBESTREAM_UI_READ_ACCESS": "token",
        "KUBESTREAM_UI_TOKEN_GENERATION_FILE": str(generation_file),
    }
    host, executors = start_job_processes(env, ["0", "1", "2"])
    wait_for(lambda: len(kube.pods(namespace)) == 4, "driver and 3 executor pods")
    run_all(kube, namespace)
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)
    old, new = read_token(secret_key, 0), read_token(secret_key, 1)
    wait_for(
        lambda: len(driver_status(host, old).get("executors") or []) == 3,
        "three executors registered",
        timeout=30,
    )
    kept = {name: pod.metadata.uid for name, pod in kube.pods(namespace).items()}

    kube.kubectl("annotate", "-n", namespace, "sj/wc", "kubestream.io/rotate-ui-tokens=2026-11-30")
    data, annotations = wait_for(
        lambda: (s := secret(kube, namespace))[0]["ui-token-generation"] == "1" and s,
        "the operator to raise the token generation",
    )
    assert data["ui-read-token"] == new
    assert data["curve-secret-key"] == secret_key  # the key pair, so the checkpoint key, stays
    assert annotations["kubestream.io/rotate-ui-tokens"] == "2026-11-30"
    wait_for(lambda: "UITokensRotated" in events(kube, namespace, "wc"), "the Event")
    # The pods' copy is not updated yet: they take only the old tokens, and the operator
    # drains with the previous generation's.
    assert driver_status(host, new) == {} and driver_status(host, old)
    drained(kube, namespace, host, old, "2")

    kubelet_updates(generation_file, data["ui-token-generation"])
    assert driver_status(host, old) == {}  # refused from the next request on
    assert driver_status(host, new).get("decommissions") == {"2": "decommissioned"}
    drained(kube, namespace, host, new, "1")
    assert executors["1"].wait(timeout=30) == 0 and executors["0"].poll() is None
    assert {name: kept[name] for name in ("wc-driver", "wc-executor-0")} == {
        name: pod.metadata.uid for name, pod in kube.pods(namespace).items()
    }

    # Another value, another rotation (the plan's tests show one per value, not per pass).
    kube.kubectl(
        "annotate", "-n", namespace, "sj/wc", "kubestream.io/rotate-ui-tokens=again", "--overwrite"
    )
    wait_for(lambda: secret(kube, namespace)[0]["ui-token-generation"] == "2", "a second rotation")
    shown = operator.log.read_text(errors="replace")
    shown += kube.kubectl("get", "events,sj", "-n", namespace, "-o", "json").stdout
    tokens = [f(secret_key, g) for f in (read_token, api_token) for g in (0, 1, 2)]
    assert [t for t in tokens if t in shown] == []
