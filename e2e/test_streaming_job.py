"""The user's path, end to end: build the image, ``helm install`` the operator,
``kubectl apply`` the example word count, and watch it survive a lost driver
and a lost executor, scale, suspend, restart on a spec change, answer through
``kubectl port-forward``, and go away cleanly.

The tests are steps of one story and run in order (a failed step skips the
rest). Input is text files a feeder pod drops into ``input/`` on the job's
checkpoint claim; after every step the job's output must equal a plain-Python
``Counter`` over everything written so far: the newest running totals, and the
per-batch counts summed (so no file was counted twice or lost).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from conftest import REPO, Cluster
from story import (
    FETCH,
    GROUP,
    IMAGE,
    PLURAL,
    READ,
    VERSION_API,
    WORDS,
    WRITE,
    Story,
    diff,
    feeder_pod,
    now,
    story_in_namespace,
)
from waits import pod_exec, pods_ready, wait_for, wait_for_event, wait_for_field

pytestmark = pytest.mark.steps

EXAMPLE = REPO / "examples" / "wordcount-job.yaml"
JOB = "wordcount"
DRIVER = f"{JOB}-driver"
FEEDER = "feeder"


@pytest.fixture(scope="module")
def story(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Story]:
    with story_in_namespace(
        cluster,
        request,
        "wordcount",
        name=JOB,
        feeder=FEEDER,
        outputs={"/checkpoint/output": []},
    ) as story:
        yield story


def test_1_helm_install_makes_the_operator_ready(story: Story) -> None:
    story.install_operator()


def test_2_the_example_runs_and_its_output_matches_a_reference(story: Story) -> None:
    since = now()
    story.kubectl("apply", "-f", str(EXAMPLE))
    created = wait_for_event(story.core, story.namespace, "DriverCreated", JOB, since=since)
    print(f"Event {created.reason}: {created.message}")
    story.wait_for_running(executors=2)
    # The file stream lists what is already there when it starts and skips it
    # (new files only, as Spark's); a finished batch proves it has started.
    wait_for(
        f"sj/{JOB} to report a finished batch",
        lambda: (bool(story.job()["status"].get("lastBatchTime")), story.job()["status"]),
    )
    story.start_feeder()
    story.write_files(8)
    story.wait_for_exact_output()


def test_3_a_deleted_driver_is_recreated_and_resumes_from_the_checkpoint(story: Story) -> None:
    story.write_files(4)  # in flight when the driver goes
    old = story.pod_uid(DRIVER)
    since = now()
    story.kubectl("delete", "pod", DRIVER, "--wait=false")
    story.write_files(4)  # while there is no driver
    recovering = wait_for_event(story.core, story.namespace, "Recovering", JOB, since=since)
    print(f"Event {recovering.reason}: {recovering.message}")
    story.wait_for_new_driver(old)
    story.wait_for_running(executors=2)
    story.driver_recovered()
    story.write_files(4)
    story.wait_for_exact_output()


def test_4_a_deleted_executor_is_replaced_and_results_stay_exact(story: Story) -> None:
    story.write_files(6)
    story.replace_executor(1, executors=2)
    story.write_files(6)
    story.wait_for_exact_output()


def _finished_tasks(story: Story, pod: str, via: str = FEEDER) -> float:
    """kubestream_executor_tasks_total{state="finished"} from the executor's own /metrics,
    fetched from inside the cluster by the pod `via`."""
    ip = story.core.read_namespaced_pod(pod, story.namespace).status.pod_ip
    text = pod_exec(
        story.core, story.namespace, via, ["python3", "-c", FETCH, f"http://{ip}:4040/metrics"]
    )
    match = re.search(r'^kubestream_executor_tasks_total\{state="finished"\} (\S+)$', text, re.M)
    assert match, f"no finished-task counter in {pod}'s /metrics:\n{text[:2000]}"
    return float(match.group(1))


def test_5_kubectl_scale_adds_an_executor_that_receives_tasks(story: Story) -> None:
    story.kubectl("scale", f"sj/{JOB}", "--replicas=3")
    story.wait_for_running(executors=3)
    wait_for(
        "the driver to list executors 0, 1 and 2",
        lambda: (story.executor_ids() == ["0", "1", "2"], story.executor_ids()),
    )
    third = f"{JOB}-executor-2"

    def third_ran_tasks() -> tuple[bool, object]:
        story.write_files(6)  # one partition per file: work for every executor
        finished = _finished_tasks(story, third)
        return finished > 0, f"{third} finished {finished:g} tasks"

    print(wait_for(f"{third} to finish tasks", third_ran_tasks, timeout=60, interval=2))
    story.wait_for_exact_output()


def test_6_suspend_keeps_the_claim_and_resume_continues(story: Story) -> None:
    since = now()
    story.kubectl("patch", "sj", JOB, "--type=merge", "-p", '{"spec": {"suspend": true}}')
    wait_for_field(f"sj/{JOB}", story.job, "status.phase", "Suspended", timeout=180)
    wait_for_event(story.core, story.namespace, "Suspended", JOB, since=since)
    story.kubectl("get", "sj", JOB)
    wait_for("no job pods", lambda: (not story.job_pods(), story.job_pods()))
    story.core.read_namespaced_persistent_volume_claim(story.claim, story.namespace)
    story.write_files(5)  # while suspended: read on resume
    story.kubectl("patch", "sj", JOB, "--type=merge", "-p", '{"spec": {"suspend": false}}')
    story.wait_for_running(executors=3)
    story.wait_for_exact_output()


def test_6b_a_changed_argument_restarts_the_job_from_its_checkpoint(story: Story) -> None:
    old = story.pod_uid(DRIVER)
    since = now()
    arguments = ["--dir", "/checkpoint/input", "--out", "/checkpoint/output2"]
    patch = {"spec": {"application": {"arguments": arguments}}}
    story.kubectl("patch", "sj", JOB, "--type=merge", "-p", json.dumps(patch))
    restarting = wait_for_event(story.core, story.namespace, "Restarting", JOB, since=since)
    print(f"Event {restarting.reason}: {restarting.message}")
    story.wait_for_new_driver(old)
    story.wait_for_running(executors=3)
    story.driver_recovered()
    # The new output's totals must include every earlier file: the state came
    # from the checkpoint, not from a fresh start.
    story.outputs["/checkpoint/output2"] = []
    story.write_files(5)
    story.wait_for_exact_output()


@contextmanager
def _port_forward(story: Story, target: str, port: int) -> Iterator[str]:
    """``kubectl port-forward TARGET :PORT``; yields the local base URL."""
    forward = subprocess.Popen(
        story.cluster.kubectl_argv(
            "-n",
            story.namespace,
            "port-forward",
            target,
            f":{port}",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert forward.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(forward.stdout or ()), daemon=True)
    reader.start()
    try:

        def forwarding() -> tuple[bool, object]:
            found = [m for line in lines if (m := re.search(r"127\.0\.0\.1:(\d+) ->", line))]
            return bool(found) or forward.poll() is not None, lines[:]

        wait_for(f"kubectl port-forward {target} :{port}", forwarding, timeout=30, interval=0.2)
        local = next(m for line in lines if (m := re.search(r"127\.0\.0\.1:(\d+) ->", line)))
        print(lines[0].strip())
        yield f"http://127.0.0.1:{local.group(1)}"
    finally:
        forward.terminate()
        forward.wait(timeout=10)
        reader.join(timeout=10)
        forward.stdout.close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())


def test_7_driver_ui_and_metrics_answer_through_kubectl_port_forward(story: Story) -> None:
    with _port_forward(story, f"pod/{DRIVER}", 4040) as base:
        page = _get(base + "/")
        assert "<title>kubestream · Streaming</title>" in page, page[:500]
        status = json.loads(_get(base + "/api/v1/status"))
        assert status["job"] == JOB and status["state"] == "active", status
        assert len(status["executors"]) == 3, status["executors"]
        metrics = _get(base + "/metrics")
        completed = re.search(r"^kubestream_batches_completed_total (\S+)$", metrics, re.M)
        assert completed and float(completed.group(1)) > 0, metrics[:2000]
        print(f"driver UI, status ({status['totals']}) and metrics answer at {base}")
    with _port_forward(story, f"pod/{JOB}-executor-0", 4040) as base:
        metrics = _get(base + "/metrics")
        assert 'kubestream_executor_info{executor_id="0"} 1.0' in metrics, metrics[:2000]
        print(f"executor 0 metrics answer at {base}")


def test_8_delete_stops_gracefully_and_leaves_only_the_claim(story: Story) -> None:
    grace = story.job()["spec"]["gracefulStopTimeoutSeconds"]
    logs = subprocess.Popen(
        story.cluster.kubectl_argv(
            "-n",
            story.namespace,
            "logs",
            "--follow",
            DRIVER,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    since = now()
    started = time.monotonic()
    story.kubectl("delete", "sj", JOB, "--wait=false")
    wait_for_event(story.core, story.namespace, "Deleting", JOB, since=since)
    wait_for(
        f"sj/{JOB} and its pods to be gone",
        lambda: (_gone(story), {"job pods": story.job_pods()}),
        timeout=grace + 60,
    )
    took = time.monotonic() - started
    tail, _ = logs.communicate(timeout=30)
    print(f"sj/{JOB} gone in {took:.1f} s (graceful-stop time {grace} s); driver's last lines:")
    print("\n".join(tail.splitlines()[-5:]))
    assert "stopping gracefully" in tail and "streaming stopped" in tail, tail[-3000:]
    assert "stopping at once" not in tail, tail[-3000:]
    assert took < grace, f"deleting took {took:.1f} s, more than the {grace} s grace period"
    left = story.kubectl(
        "get",
        "pods,services,secrets,configmaps,serviceaccounts,networkpolicies,pvc",
        "-l",
        f"kubestream.io/job={JOB}",
        "-o",
        "name",
    ).split()
    assert left == [f"persistentvolumeclaim/{story.claim}"], left
    story.wait_for_exact_output()  # the claim keeps every batch the job wrote


def _gone(story: Story) -> bool:
    jobs = story.custom.list_namespaced_custom_object(GROUP, VERSION_API, story.namespace, PLURAL)
    assert isinstance(jobs, dict)
    return not jobs["items"] and not story.job_pods()


SCALED = "autoscaled"
SCALED_FEEDER = f"{SCALED}-feeder"
# The application goes in the job's configuration (a ConfigMap file on the driver,
# shipped to executors with its functions): each line costs 50 ms of waiting, so
# what one executor takes is known and another adds as much, on any machine.
SLOW_APP = REPO / "tests" / "operator" / "slow_wordcount.py"


def _scaled_job() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION_API}",
        "kind": "StreamingJob",
        "metadata": {"name": SCALED},
        "spec": {
            "image": IMAGE,
            "application": {
                "file": "/etc/kubestream/config/slow_wordcount.py",
                "function": "build",
                "arguments": [
                    "--dir",
                    "/checkpoint/input",
                    "--out",
                    "/checkpoint/output/counts",
                    "--seconds-per-line",
                    "0.05",
                ],
            },
            "configuration": {"slow_wordcount.py": SLOW_APP.read_text()},
            "batchIntervalSeconds": 2,
            "executors": {"replicas": 1, "min": 1, "max": 4},
            "autoscaling": {
                "enabled": True,
                "stabilizationWindowSeconds": 10,
                "scaleUpCooldownSeconds": 10,
                "scaleDownCooldownSeconds": 30,
                "catchUpSeconds": 30,
            },
        },
    }


class _Scaled:
    """The autoscaled job's input, written through its feeder pod, and its reference."""

    def __init__(self, story: Story) -> None:
        self.story = story
        self.written: Counter[str] = Counter()
        self.files = 0

    def job(self) -> dict[str, Any]:
        found = self.story.custom.get_namespaced_custom_object(
            GROUP, VERSION_API, self.story.namespace, PLURAL, SCALED
        )
        assert isinstance(found, dict)
        return found

    def write(self, count: int) -> None:
        batch = {}
        for _ in range(count):
            lines = [" ".join(self.story.rng.choices(WORDS, k=3)) for _ in range(20)]
            batch[f"f{self.files:05d}.txt"] = "\n".join(lines) + "\n"
            self.files += 1
        core, ns = self.story.core, self.story.namespace
        pod_exec(core, ns, SCALED_FEEDER, ["python3", "-c", WRITE, json.dumps(batch)])
        self.written.update(w for text in batch.values() for w in text.split())

    def counted(self) -> Counter[str]:
        core, ns = self.story.core, self.story.namespace
        read = ["python3", "-c", READ, "/checkpoint/output"]
        return Counter(json.loads(pod_exec(core, ns, SCALED_FEEDER, read))["counts"])

    def executor_pods(self) -> list[str]:
        pods = self.story.core.list_namespaced_pod(
            self.story.namespace,
            label_selector=f"kubestream.io/job={SCALED},kubestream.io/role=executor",
        )
        return sorted(p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp)

    def autoscaler(self) -> dict[str, Any]:
        found: dict[str, Any] = self.job().get("status", {}).get("autoscaler") or {}
        return found


def _events(story: Story, name: str, reason: str) -> list[str]:
    return [
        e.message
        for e in story.core.list_namespaced_event(story.namespace).items
        if e.involved_object.name == name and e.reason == reason
    ]


def test_8b_autoscaling_adds_executors_under_load_and_drains_them_after(story: Story) -> None:
    """min 1, max 4: low load, then more than one executor takes, then low again."""
    scaled = _Scaled(story)
    story.custom.create_namespaced_custom_object(
        GROUP, VERSION_API, story.namespace, PLURAL, _scaled_job()
    )
    wait_for(
        f"sj/{SCALED} Running with a finished batch",
        lambda: (
            (s := scaled.job().get("status", {})).get("phase") == "Running"
            and bool(s.get("lastBatchTime")),
            s.get("phase"),
        ),
        timeout=180,
    )
    story.core.create_namespaced_pod(
        story.namespace, feeder_pod(SCALED_FEEDER, f"{SCALED}-checkpoint")
    )
    pods_ready(story.core, story.namespace, f"app={SCALED_FEEDER}", 1)
    scaled.write(1)  # low: 1 s of work now and then
    wait_for("the low load counted", lambda: (scaled.counted() == scaled.written, scaled.files))
    assert scaled.executor_pods() == [f"{SCALED}-executor-0"]

    # High: 4 files (4 s of work for one executor) about every second.
    started = time.monotonic()

    def new_executor_ran_tasks() -> tuple[bool, object]:
        scaled.write(4)
        added = [p for p in scaled.executor_pods() if not p.endswith("-0")]
        done = {}
        for pod in added:
            try:
                done[pod] = _finished_tasks(story, pod, via=SCALED_FEEDER)
            except (AssertionError, ApiException):
                done[pod] = 0.0  # not serving yet
        return any(done.values()), done

    seen = wait_for("a task finished on a new executor", new_executor_ran_tasks, 300, 0.5)
    first_task = time.monotonic() - started
    up = scaled.autoscaler()["lastAction"]
    print(f"load step -> first task on a new executor: {first_task:.0f} s ({seen})")
    print(f"lastAction: {up}")
    assert up["action"] == "up" and up["applied"] and up["to"] > 1, up
    print("AutoscaledUp:", _events(story, SCALED, "AutoscaledUp"))

    # Low again: one file every few seconds; the autoscaler drains what it added.
    def scaled_down() -> tuple[bool, object]:
        scaled.write(1)
        action = scaled.autoscaler().get("lastAction") or {}
        pods = scaled.executor_pods()
        return action.get("action") == "down" and len(pods) == action.get("to"), (action, pods)

    wait_for("the autoscaler to scale down", scaled_down, 300, 5)
    down, pods = scaled.autoscaler()["lastAction"], scaled.executor_pods()
    print(f"lastAction: {down}; executor pods {pods}")
    assert down["applied"] and down["reason"] == "UNDERLOAD", down
    assert not {f"{SCALED}-executor-{i}" for i in down["removeExecutors"]} & set(pods)
    removed = _events(story, SCALED, "ExecutorRemoved")
    assert removed and all(m.endswith("after draining") for m in removed), removed
    print("AutoscaledDown:", _events(story, SCALED, "AutoscaledDown"))
    print("status.autoscaler.lastEvaluation:", scaled.autoscaler().get("lastEvaluation"))
    wait_for(
        "every word counted exactly",
        lambda: (scaled.counted() == scaled.written, diff(scaled.counted(), scaled.written)),
    )
    story.kubectl("delete", "sj", SCALED, "--timeout=120s")
    story.kubectl("delete", "pod", SCALED_FEEDER, "--wait=false")


def test_9_helm_uninstall_leaves_nothing_of_the_operator(cluster: Cluster, story: Story) -> None:
    cluster.helm("uninstall", story.release, "--namespace", story.operator_namespace, "--wait")
    label = f"app.kubernetes.io/instance={story.release}"
    wait_for(
        "the operator's pods to be gone",
        lambda: (
            not cluster.core.list_namespaced_pod(story.operator_namespace).items,
            [
                p.metadata.name
                for p in cluster.core.list_namespaced_pod(story.operator_namespace).items
            ],
        ),
    )
    namespaced = cluster.kubectl(
        "get",
        "all,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies",
        "--namespace",
        story.operator_namespace,
        "-o",
        "name",
    ).split()
    assert [
        n
        for n in namespaced
        if not n.startswith(("serviceaccount/default", "configmap/kube-root-ca"))
    ] == []
    cluster_wide = cluster.kubectl(
        "get", "clusterroles,clusterrolebindings,clusterkopfpeerings", "-l", label, "-o", "name"
    ).split()
    assert cluster_wide == [], cluster_wide
    peerings = cluster.kubectl("get", "clusterkopfpeerings", "-o", "name").split()
    print(f"left by design: the CRDs (Helm never deletes them); kopf peerings: {peerings}")
