"""What the e2e stories share: the kubestream image and chart, a ``Story`` (a job's
namespace, its operator release and everything fed to the job so far), the pod that
reads the job's output from its claim, and the output's check against a plain-Python
``Counter``.

A job's output is ``save_as_text_files`` directories on its checkpoint claim:
``<out>/counts-<ms>/`` (each batch's counts) and ``<out>/totals-<ms>/`` (running
totals). "Exact" means both the newest totals and the per-batch counts summed over
every batch equal the reference: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import json
import random
import secrets
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from conftest import REPO, Cluster
from waits import pod_exec, pods_ready, wait_for, wait_for_event

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"kubestream/kubestream:{VERSION}"
CHART = REPO / "charts" / "kubestream"
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
    """What a story's steps share: where things run and everything fed to the job so far.

    ``written`` maps an input's name (a file, a record) to its text; ``outputs`` maps
    each output directory to the names of the inputs whose per-batch counts land there.
    """

    cluster: Cluster
    namespace: str
    operator_namespace: str
    release: str
    name: str  # the StreamingJob's
    feeder: str  # the pod on the job's claim that reads its output (and writes file input)
    outputs: dict[str, list[str]]
    written: dict[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def driver(self) -> str:
        return f"{self.name}-driver"

    @property
    def claim(self) -> str:
        return f"{self.name}-checkpoint"

    @property
    def core(self) -> client.CoreV1Api:
        return self.cluster.core

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.cluster.api)

    def job(self) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(
            GROUP, VERSION_API, self.namespace, PLURAL, self.name
        )
        assert isinstance(found, dict)
        return found

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.cluster.kubectl("-n", self.namespace, *args, check=check)

    def pod_uid(self, name: str) -> str | None:
        pods = self.core.list_namespaced_pod(self.namespace, field_selector=f"metadata.name={name}")
        return pods.items[0].metadata.uid if pods.items else None

    def job_pods(self) -> list[str]:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"kubestream.io/job={self.name}"
        )
        return [p.metadata.name for p in pods.items]

    def start_feeder(self) -> None:
        """Starts the feeder pod on the job's claim and waits until it is Ready."""
        self.core.create_namespaced_pod(self.namespace, feeder_pod(self.feeder, self.claim))
        pods_ready(self.core, self.namespace, f"app={self.feeder}", 1)

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
        pod_exec(
            self.core, self.namespace, self.feeder, ["python3", "-c", WRITE, json.dumps(batch)]
        )
        self.fed(batch)

    def fed(self, inputs: dict[str, str]) -> None:
        """Records inputs the job now has, for the reference (into the newest output)."""
        self.written.update(inputs)
        next(reversed(self.outputs.values())).extend(inputs)

    def expected(self, names: list[str] | None = None) -> Counter[str]:
        """The plain-Python reference: words in the given inputs (default: all)."""
        texts = self.written.values() if names is None else [self.written[n] for n in names]
        return Counter(word for text in texts for word in text.split())

    def wait_for_exact_output(self, timeout: float = 120) -> None:
        """Waits until every output directory holds exactly the reference counts."""
        newest = next(reversed(self.outputs))
        for out, names in self.outputs.items():
            total = self.expected() if out == newest else None
            what = f"{out} to hold the counts of {len(names)} inputs"
            if total is not None:
                what += f" and the totals of all {len(self.written)}"
            seen = wait_for(what, self._output_is(out, self.expected(names), total), timeout, 2)
            print(f"{out}: exact ({seen})")

    def _output_is(
        self, out: str, counted: Counter[str], total: Counter[str] | None
    ) -> Callable[[], tuple[bool, object]]:
        def probe() -> tuple[bool, object]:
            got = json.loads(
                pod_exec(self.core, self.namespace, self.feeder, ["python3", "-c", READ, out])
            )
            counts, totals = Counter(got["counts"]), Counter(got["totals"])
            seen = f"{got['batches']} batches; per-batch counts off by {diff(counts, counted)}"
            if total is None:
                return counts == counted, seen
            seen += f"; newest totals off by {diff(totals, total)}"
            return counts == counted and totals == total, seen

        return probe

    def driver_ready(self) -> bool:
        pods = self.core.list_namespaced_pod(
            self.namespace, field_selector=f"metadata.name={self.driver}"
        )
        conditions = pods.items[0].status.conditions or [] if pods.items else []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    def wait_for_new_driver(self, old_uid: str | None) -> None:
        """Waits for a driver pod other than the one whose uid was ``old_uid``."""
        wait_for(
            "a new driver pod",
            lambda: (self.pod_uid(self.driver) not in (None, old_uid), self.pod_uid(self.driver)),
        )

    def driver_recovered(self) -> None:
        """Waits for the driver's log to say it resumed from the checkpoint, and prints it."""

        def probe() -> tuple[bool, object]:
            log = self.core.read_namespaced_pod_log(self.driver, self.namespace)
            lines = [line for line in log.splitlines() if "recovered from checkpoint" in line]
            return bool(lines), lines[0] if lines else log[-2000:]

        print(wait_for(f"{self.driver}'s log to say it recovered from the checkpoint", probe))

    def driver_status(self) -> dict[str, Any]:
        """The driver's /api/v1/status, asked from inside the cluster."""
        url = f"http://{self.driver}.{self.namespace}.svc:4040/api/v1/status"
        status: dict[str, Any] = json.loads(
            pod_exec(self.core, self.namespace, self.feeder, ["python3", "-c", FETCH, url])
        )
        return status

    def executor_ids(self) -> list[str]:
        """The ids of the executors the driver's status lists as active."""
        return sorted(e["id"] for e in self.driver_status()["executors"] if e["state"] == "active")

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

        wait_for(
            f"sj/{self.name} Running with {executors}/{executors} executors", probe, timeout=180
        )
        self.kubectl("get", "sj", self.name)

    def replace_executor(
        self, index: int, executors: int, while_gone: Callable[[], None] = lambda: None
    ) -> None:
        """Deletes executor pod `index`, runs `while_gone` once it is gone, and waits until
        the operator made a new one and the driver lists all `executors` again."""
        victim = f"{self.name}-executor-{index}"
        old = self.pod_uid(victim)
        since = now()
        started = time.monotonic()
        self.kubectl("delete", "pod", victim)  # returns once the pod is gone
        print(f"{victim} stopped and was gone in {time.monotonic() - started:.1f} s")
        while_gone()
        wait_for_event(self.core, self.namespace, "ExecutorCreated", self.name, since=since)
        wait_for(
            f"a new {victim}",
            lambda: (self.pod_uid(victim) not in (None, old), self.pod_uid(victim)),
        )
        self.wait_for_running(executors=executors)
        ids = [str(i) for i in range(executors)]
        wait_for(
            f"the driver to list executors {ids}",
            lambda: (self.executor_ids() == ids, self.executor_ids()),
        )

    def install_operator(self, *, watch_own_namespace: bool = False) -> None:
        """Builds the image, ``helm install``s the chart and waits for the operator's pod.

        ``watch_own_namespace`` installs the operator for the story's namespace only
        (``watchNamespaces``); otherwise it watches every namespace, as by default.
        """
        self.cluster.build_image(IMAGE, REPO)
        assert CHART.joinpath("Chart.yaml").is_file(), f"no chart at {CHART}"
        scope = ["--set", f"watchNamespaces={{{self.namespace}}}"] if watch_own_namespace else []
        self.cluster.helm(
            "install",
            self.release,
            str(CHART),
            "--namespace",
            self.operator_namespace,
            "--create-namespace",
            *scope,
        )
        selector = f"app.kubernetes.io/instance={self.release}"
        pods = pods_ready(self.core, self.operator_namespace, selector, 1)
        print(f"operator Ready: {pods}")
        self.cluster.kubectl("get", "pods", "-n", self.operator_namespace, "-o", "wide")

    def print_diagnostics(self) -> None:
        """What a person would look at first when a step failed, before teardown deletes it."""
        print("\n=== diagnostics: the jobs, pods, Events and logs ===")
        self.kubectl("get", "sj,pods,pvc", "-o", "wide", check=False)
        self.kubectl("get", "events", "--sort-by=.lastTimestamp", check=False)
        for pod in self.job_pods():
            print(f"--- kubectl logs {pod} (last 40 lines)")
            self.kubectl("logs", pod, "--tail=40", check=False)
        self.cluster.kubectl(
            "logs",
            "-n",
            self.operator_namespace,
            "-l",
            f"app.kubernetes.io/instance={self.release}",
            "--tail=30",
            check=False,
        )


@contextmanager
def story_in_namespace(
    cluster: Cluster, request: Any, prefix: str, **fields: Any
) -> Iterator[Story]:
    """A Story in a fresh namespace ``e2e-<prefix>-<hex>``, with its own operator
    release; at the end (diagnostics first if a step failed) deletes the jobs while
    the operator still holds their finalizers, uninstalls it, deletes both namespaces."""
    suffix = secrets.token_hex(3)
    story = Story(
        cluster,
        namespace=f"e2e-{prefix}-{suffix}",
        operator_namespace=f"e2e-operator-{suffix}",
        release=f"ks-{suffix}",
        **fields,
    )
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=story.namespace))
    )
    try:
        yield story
    finally:
        if getattr(request.node, "_failed_step", None):
            story.print_diagnostics()
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


def diff(got: Counter[str], want: Counter[str]) -> str:
    """What ``got`` has more (positive) or less (negative) than ``want``, a few words of it."""
    off = {w: got[w] - want[w] for w in set(got) | set(want) if got[w] != want[w]}
    return "nothing" if not off else str(dict(sorted(off.items())[:6]))


def now() -> datetime:
    """A moment ago, for waiting on Events that come after an action."""
    return datetime.now(UTC) - timedelta(seconds=1)


def feeder_pod(name: str, claim: str | None = None) -> client.V1Pod:
    """A pod on the kubestream image that sleeps, to run commands in like a user would;
    with ``claim``, mounted at /checkpoint to write a job's input and read its output."""
    volumes = (
        [
            client.V1Volume(
                name="data",
                persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                    claim_name=claim
                ),
            )
        ]
        if claim
        else []
    )
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
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/checkpoint")]
                    if claim
                    else [],
                )
            ],
            volumes=volumes,
        ),
    )
