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
import random
import re
import secrets
import subprocess
import threading
import time
import tomllib
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from conftest import REPO, Cluster
from waits import pod_exec, pods_ready, wait_for, wait_for_event, wait_for_field

pytestmark = pytest.mark.steps

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"kubestream/kubestream:{VERSION}"
EXAMPLE = REPO / "examples" / "wordcount-job.yaml"
CHART = REPO / "charts" / "kubestream"
JOB = "wordcount"
CLAIM = f"{JOB}-checkpoint"
DRIVER = f"{JOB}-driver"
FEEDER = "feeder"
GROUP, VERSION_API, PLURAL = "kubestream.io", "v1alpha1", "streamingjobs"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

# Run in the feeder pod. WRITE drops files into input/ the way a producer
# should (write a hidden file, then rename it in); READ sums an output
# directory's per-batch counts and returns its newest totals, as JSON.
WRITE = """
import json, os, sys
os.makedirs('/checkpoint/input', exist_ok=True)
for name, text in json.loads(sys.argv[1]).items():
    staged = '/checkpoint/input/.' + name
    with open(staged, 'w') as f:
        f.write(text)
    os.rename(staged, '/checkpoint/input/' + name)
"""
READ = """
import ast, collections, glob, json, os, sys
def pairs(d):
    for part in sorted(glob.glob(d + '/part-*')):
        for line in open(part).read().splitlines():
            yield ast.literal_eval(line)
counts = collections.Counter()
for d in glob.glob(sys.argv[1] + '/counts-*'):
    for word, n in pairs(d):
        counts[word] += n
totals = sorted(glob.glob(sys.argv[1] + '/totals-*'), key=lambda d: int(d.rsplit('-', 1)[1]))
newest = dict(pairs(totals[-1])) if totals else {}
print(json.dumps({'counts': counts, 'totals': newest, 'batches': len(totals)}))
"""
FETCH = """
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
"""


@dataclass
class Story:
    """What the steps share: where things run and everything written so far."""

    cluster: Cluster
    namespace: str
    operator_namespace: str
    release: str
    written: dict[str, str] = field(default_factory=dict)
    # Output directory -> names of the files whose per-batch counts land there.
    outputs: dict[str, list[str]] = field(default_factory=lambda: {"/checkpoint/output": []})
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def core(self) -> client.CoreV1Api:
        return self.cluster.core

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.cluster.api)

    def job(self) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(
            GROUP, VERSION_API, self.namespace, PLURAL, JOB
        )
        assert isinstance(found, dict)
        return found

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.cluster.kubectl("-n", self.namespace, *args, check=check)

    def pod_uid(self, name: str) -> str | None:
        pods = self.core.list_namespaced_pod(self.namespace, field_selector=f"metadata.name={name}")
        return pods.items[0].metadata.uid if pods.items else None

    def write_files(self, count: int) -> None:
        """Drops ``count`` new text files into the job's input directory."""
        batch: dict[str, str] = {}
        for _ in range(count):
            name = f"part-{len(self.written) + len(batch):04d}.txt"
            lines = [
                " ".join(self.rng.choices(WORDS, k=self.rng.randint(1, 8)))
                for _ in range(self.rng.randint(5, 30))
            ]
            batch[name] = "\n".join(lines) + "\n"
        pod_exec(self.core, self.namespace, FEEDER, ["python3", "-c", WRITE, json.dumps(batch)])
        self.written.update(batch)
        next(reversed(self.outputs.values())).extend(batch)

    def expected(self, names: list[str] | None = None) -> Counter[str]:
        """The plain-Python reference: words in the given files (default: all)."""
        texts = self.written.values() if names is None else [self.written[n] for n in names]
        return Counter(word for text in texts for word in text.split())

    def wait_for_exact_output(self, timeout: float = 120) -> None:
        """Waits until every output directory holds exactly the reference counts."""
        newest = next(reversed(self.outputs))
        for out, names in self.outputs.items():
            total = self.expected() if out == newest else None
            what = f"{out} to hold the counts of {len(names)} files"
            if total is not None:
                what += f" and the totals of all {len(self.written)}"
            seen = wait_for(what, self._output_is(out, self.expected(names), total), timeout, 2)
            print(f"{out}: exact ({seen})")

    def _output_is(
        self, out: str, counted: Counter[str], total: Counter[str] | None
    ) -> Callable[[], tuple[bool, object]]:
        def probe() -> tuple[bool, object]:
            got = json.loads(
                pod_exec(self.core, self.namespace, FEEDER, ["python3", "-c", READ, out])
            )
            counts, totals = Counter(got["counts"]), Counter(got["totals"])
            seen = f"{got['batches']} batches; per-batch counts off by {_diff(counts, counted)}"
            if total is None:
                return counts == counted, seen
            seen += f"; newest totals off by {_diff(totals, total)}"
            return counts == counted and totals == total, seen

        return probe

    def driver_ready(self) -> bool:
        pods = self.core.list_namespaced_pod(
            self.namespace, field_selector=f"metadata.name={DRIVER}"
        )
        conditions = pods.items[0].status.conditions or [] if pods.items else []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    def wait_for_new_driver(self, old_uid: str | None) -> None:
        """Waits for a driver pod other than the one whose uid was ``old_uid``."""
        wait_for(
            "a new driver pod",
            lambda: (self.pod_uid(DRIVER) not in (None, old_uid), self.pod_uid(DRIVER)),
        )

    def driver_recovered(self) -> None:
        """Waits for the driver's log to say it resumed from the checkpoint, and prints it."""

        def probe() -> tuple[bool, object]:
            log = self.core.read_namespaced_pod_log(DRIVER, self.namespace)
            lines = [line for line in log.splitlines() if "recovered from checkpoint" in line]
            return bool(lines), lines[0] if lines else log[-2000:]

        print(wait_for(f"{DRIVER}'s log to say it recovered from the checkpoint", probe))

    def driver_status(self) -> dict[str, Any]:
        """The driver's /api/v1/status, asked from inside the cluster."""
        url = f"http://{DRIVER}.{self.namespace}.svc:4040/api/v1/status"
        status: dict[str, Any] = json.loads(
            pod_exec(self.core, self.namespace, FEEDER, ["python3", "-c", FETCH, url])
        )
        return status

    def wait_for_running(self, executors: int) -> None:
        """Waits until ``kubectl get sj`` shows Running with all executors ready."""

        def probe() -> tuple[bool, object]:
            status = self.job().get("status", {})
            seen = {k: status.get(k) for k in ("phase", "executors", "lastBatchTime")}
            # Running comes with the driver's container; its readiness, a moment
            # later, says it serves (and has logged how it started).
            seen["driver ready"] = self.driver_ready()
            ready = (
                status.get("phase") == "Running"
                and status.get("executors") == f"{executors}/{executors}"
                and seen["driver ready"]
            )
            return ready, seen

        wait_for(f"sj/{JOB} Running with {executors}/{executors} executors", probe, timeout=180)
        self.kubectl("get", "sj", JOB)


def _diff(got: Counter[str], want: Counter[str]) -> str:
    off = {w: got[w] - want[w] for w in set(got) | set(want) if got[w] != want[w]}
    return "nothing" if not off else str(dict(sorted(off.items())[:6]))


def _now() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def _feeder_pod(name: str = FEEDER, claim: str = CLAIM) -> client.V1Pod:
    """A pod that shares the job's claim, to write input and read output like a user would."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True, run_as_user=10001, run_as_group=10001, fs_group=10001
            ),
            containers=[
                client.V1Container(
                    name=name,
                    image=IMAGE,
                    image_pull_policy="IfNotPresent",
                    command=[
                        "python3",
                        "-c",
                        "import signal, time; signal.signal(signal.SIGTERM, lambda *_: exit(0));"
                        " time.sleep(86400)",
                    ],
                    security_context=client.V1SecurityContext(
                        read_only_root_filesystem=True,
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                    ),
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/checkpoint")],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="data",
                    persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name=claim
                    ),
                )
            ],
        ),
    )


@pytest.fixture(scope="module")
def story(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Story]:
    suffix = secrets.token_hex(3)
    story = Story(
        cluster,
        namespace=f"e2e-wordcount-{suffix}",
        operator_namespace=f"e2e-operator-{suffix}",
        release=f"ks-{suffix}",
    )
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=story.namespace))
    )
    try:
        yield story
    finally:
        if getattr(request.node, "_failed_step", None):
            _print_diagnostics(story)
        installed = cluster.helm(
            "status", story.release, "-n", story.operator_namespace, check=False
        )
        if installed:
            # While the operator runs: it holds the job's finalizer, and without
            # it the job, and so its namespace, would never go.
            story.kubectl("delete", "sj", "--all", "--timeout=120s", check=False)
            cluster.helm("uninstall", story.release, "-n", story.operator_namespace, check=False)
        for ns in (story.namespace, story.operator_namespace):
            cluster.kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait=false")


def _print_diagnostics(story: Story) -> None:
    """What a person would look at first when a step failed, before teardown deletes it."""
    print("\n=== diagnostics: the job, its pods, Events and logs ===")
    story.kubectl("get", "sj,pods,pvc", "-o", "wide", check=False)
    story.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)
    for pod in _job_pods(story):
        print(f"--- kubectl logs {pod} (last 40 lines)")
        story.kubectl("logs", pod, "--tail=40", check=False)
    story.cluster.kubectl(
        "logs",
        "-n",
        story.operator_namespace,
        "-l",
        f"app.kubernetes.io/instance={story.release}",
        "--tail=30",
        check=False,
    )


def test_1_helm_install_makes_the_operator_ready(cluster: Cluster, story: Story) -> None:
    cluster.build_image(IMAGE, REPO)
    assert CHART.joinpath("Chart.yaml").is_file(), f"no chart at {CHART}"
    cluster.helm(
        "install",
        story.release,
        str(CHART),
        "--namespace",
        story.operator_namespace,
        "--create-namespace",
    )
    selector = f"app.kubernetes.io/instance={story.release}"
    pods = pods_ready(cluster.core, story.operator_namespace, selector, 1)
    print(f"operator Ready: {pods}")
    cluster.kubectl("get", "pods", "-n", story.operator_namespace, "-o", "wide")


def test_2_the_example_runs_and_its_output_matches_a_reference(story: Story) -> None:
    since = _now()
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
    story.core.create_namespaced_pod(story.namespace, _feeder_pod())
    pods_ready(story.core, story.namespace, f"app={FEEDER}", 1)
    story.write_files(8)
    story.wait_for_exact_output()


def test_3_a_deleted_driver_is_recreated_and_resumes_from_the_checkpoint(story: Story) -> None:
    story.write_files(4)  # in flight when the driver goes
    old = story.pod_uid(DRIVER)
    since = _now()
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
    victim = f"{JOB}-executor-1"
    old = story.pod_uid(victim)
    story.write_files(6)
    since = _now()
    started = time.monotonic()
    story.kubectl("delete", "pod", victim)  # returns once the pod is gone
    print(f"{victim} stopped and was gone in {time.monotonic() - started:.1f} s")
    wait_for_event(story.core, story.namespace, "ExecutorCreated", JOB, since=since)
    wait_for(
        f"a new {victim}", lambda: (story.pod_uid(victim) not in (None, old), story.pod_uid(victim))
    )
    story.wait_for_running(executors=2)
    wait_for(
        "the driver to list executors 0 and 1",
        lambda: (_executor_ids(story) == ["0", "1"], _executor_ids(story)),
    )
    story.write_files(6)
    story.wait_for_exact_output()


def _executor_ids(story: Story) -> list[str]:
    return sorted(e["id"] for e in story.driver_status()["executors"] if e["state"] == "active")


def _finished_tasks(story: Story, pod: str) -> float:
    """kubestream_executor_tasks_total{state="finished"} from the executor's own /metrics."""
    ip = story.core.read_namespaced_pod(pod, story.namespace).status.pod_ip
    text = pod_exec(
        story.core, story.namespace, FEEDER, ["python3", "-c", FETCH, f"http://{ip}:4040/metrics"]
    )
    match = re.search(r'^kubestream_executor_tasks_total\{state="finished"\} (\S+)$', text, re.M)
    assert match, f"no finished-task counter in {pod}'s /metrics:\n{text[:2000]}"
    return float(match.group(1))


def test_5_kubectl_scale_adds_an_executor_that_receives_tasks(story: Story) -> None:
    story.kubectl("scale", f"sj/{JOB}", "--replicas=3")
    story.wait_for_running(executors=3)
    wait_for(
        "the driver to list executors 0, 1 and 2",
        lambda: (_executor_ids(story) == ["0", "1", "2"], _executor_ids(story)),
    )
    third = f"{JOB}-executor-2"

    def third_ran_tasks() -> tuple[bool, object]:
        story.write_files(6)  # one partition per file: work for every executor
        finished = _finished_tasks(story, third)
        return finished > 0, f"{third} finished {finished:g} tasks"

    print(wait_for(f"{third} to finish tasks", third_ran_tasks, timeout=60, interval=2))
    story.wait_for_exact_output()


def test_6_suspend_keeps_the_claim_and_resume_continues(story: Story) -> None:
    since = _now()
    story.kubectl("patch", "sj", JOB, "--type=merge", "-p", '{"spec": {"suspend": true}}')
    wait_for_field(f"sj/{JOB}", story.job, "status.phase", "Suspended", timeout=180)
    wait_for_event(story.core, story.namespace, "Suspended", JOB, since=since)
    story.kubectl("get", "sj", JOB)
    wait_for("no job pods", lambda: (not _job_pods(story), _job_pods(story)))
    story.core.read_namespaced_persistent_volume_claim(CLAIM, story.namespace)
    story.write_files(5)  # while suspended: read on resume
    story.kubectl("patch", "sj", JOB, "--type=merge", "-p", '{"spec": {"suspend": false}}')
    story.wait_for_running(executors=3)
    story.wait_for_exact_output()


def _job_pods(story: Story) -> list[str]:
    pods = story.core.list_namespaced_pod(
        story.namespace, label_selector=f"kubestream.io/job={JOB}"
    )
    return [p.metadata.name for p in pods.items]


def test_6b_a_changed_argument_restarts_the_job_from_its_checkpoint(story: Story) -> None:
    old = story.pod_uid(DRIVER)
    since = _now()
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
    since = _now()
    started = time.monotonic()
    story.kubectl("delete", "sj", JOB, "--wait=false")
    wait_for_event(story.core, story.namespace, "Deleting", JOB, since=since)
    wait_for(
        f"sj/{JOB} and its pods to be gone",
        lambda: (_gone(story), {"job pods": _job_pods(story)}),
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
    assert left == [f"persistentvolumeclaim/{CLAIM}"], left
    story.wait_for_exact_output()  # the claim keeps every batch the job wrote


def _gone(story: Story) -> bool:
    jobs = story.custom.list_namespaced_custom_object(GROUP, VERSION_API, story.namespace, PLURAL)
    assert isinstance(jobs, dict)
    return not jobs["items"] and not _job_pods(story)


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
        story.namespace, _feeder_pod(SCALED_FEEDER, f"{SCALED}-checkpoint")
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
                done[pod] = _finished_tasks(story, pod)
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
        lambda: (scaled.counted() == scaled.written, _diff(scaled.counted(), scaled.written)),
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
