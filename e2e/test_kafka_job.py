"""The Kafka story on a real cluster: a Kafka broker pod, the example Kafka word
count as a StreamingJob reading a 4-partition topic, and exact totals after a lost
driver and a lost executor.

The broker image is built here, from nothing a registry holds: the cluster's own
Debian base image, Debian's Java 17 runtime and the jars ``hack/brokers/kafka.sh``
fetched from Maven Central (``e2e/kafka/Dockerfile``; the container runs
``kafka.sh run``, the recipe the integration tests use, as a single KRaft node whose
PLAINTEXT listener is advertised under its Service's name). The job is
``examples/kafka-wordcount-job.yaml`` with one change: it reads that broker over
PLAINTEXT, so its SASL Secrets and CA file go (the integration tests prove the
SASL/TLS path against the real broker). Its operator is installed for the story's
namespace only (``watchNamespaces``), so other stories' releases can share the
cluster.

Records are produced by a client pod with confluent-kafka's idempotent producer
(acks=all, each delivery confirmed), round robin over the partitions; the reference
is a plain-Python ``Counter`` over the words of every record produced.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, Cluster, pinned
from story import WORDS, Story, feeder_pod, now, story_in_namespace
from waits import pod_exec, pods_ready, wait_for, wait_for_event

pytestmark = pytest.mark.steps

KAFKA_VERSION = pinned("KAFKA_VERSION")
BROKER_IMAGE = f"kubestream/kafka-broker:{KAFKA_VERSION}"
BROKER = "kafka"  # the Deployment and its Service
PORT = 9092
CLIENT = "kafka-client"  # produces and administers, from inside the cluster
READER = "reader"  # reads the job's output from its claim
EXAMPLE = REPO / "examples" / "kafka-wordcount-job.yaml"
JOB = "kafka-wordcount"
TOPIC = "lines"
PARTITIONS = 4
OUT = "/checkpoint/out"

# Run in the client pod with the broker's address as argv[1]. Each prints JSON and
# exits 0 when the broker is not there yet, so a wait can poll it.
READY = """
import json, sys
from confluent_kafka.admin import AdminClient
try:
    md = AdminClient({'bootstrap.servers': sys.argv[1]}).list_topics(timeout=5)
    print(json.dumps({'brokers': [f'{b.host}:{b.port}' for b in md.brokers.values()]}))
except Exception as err:
    print(json.dumps({'error': str(err)}))
"""
CREATE_TOPIC = """
import json, sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({'bootstrap.servers': sys.argv[1]})
topic, partitions = sys.argv[2], int(sys.argv[3])
admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)
md = admin.list_topics(topic, timeout=10).topics[topic]
print(json.dumps({'partitions': sorted(md.partitions)}))
"""
# argv: address, topic, partitions, JSON list of lines. Prints per-partition counts
# and any delivery error; exits non-zero unless every record was acknowledged.
PRODUCE = """
import collections, json, sys
from confluent_kafka import Producer
address, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = json.loads(sys.argv[4])
producer = Producer({'bootstrap.servers': address, 'enable.idempotence': True, 'acks': 'all'})
acked, errors = collections.Counter(), []
def delivered(err, msg):
    if err is None:
        acked[msg.partition()] += 1
    else:
        errors.append(str(err))
for i, line in enumerate(lines):
    producer.produce(topic, value=line.encode(), partition=i % partitions, on_delivery=delivered)
    producer.poll(0)
left = producer.flush(60)
print(json.dumps({'acked': acked, 'errors': errors, 'unflushed': left}))
sys.exit(0 if sum(acked.values()) == len(lines) else 1)
"""


def broker_address(namespace: str) -> str:
    return f"{BROKER}.{namespace}.svc:{PORT}"


def broker_context(into: Path) -> Path:
    """The broker image's build context: the Dockerfile, kafka.sh and its library and
    pinned versions, and the jars ``kafka.sh install`` keeps in the cache (fetched from
    Maven Central the first time)."""
    installed = subprocess.run(
        [str(REPO / "hack" / "brokers" / "kafka.sh"), "install"],
        check=True,
        capture_output=True,
        text=True,
    )
    lib = Path(installed.stdout.strip().splitlines()[-1])
    shutil.copy(REPO / "e2e" / "kafka" / "Dockerfile", into / "Dockerfile")
    (into / "hack" / "brokers").mkdir(parents=True)
    shutil.copy(REPO / "hack" / "versions.env", into / "hack")
    for script in ("kafka.sh", "lib.sh"):
        shutil.copy2(REPO / "hack" / "brokers" / script, into / "hack" / "brokers")
    shutil.copytree(lib, into / "cache" / lib.parent.name / "lib")
    return into


def broker_manifests(namespace: str) -> list[dict[str, Any]]:
    """The broker's Deployment (one pod, data in an emptyDir) and its Service."""
    labels = {"app": BROKER}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": BROKER, "labels": labels},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                    },
                    "containers": [
                        {
                            "name": "kafka",
                            "image": BROKER_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "env": [
                                {
                                    "name": "KAFKA_ADVERTISED_HOST",
                                    "value": f"{BROKER}.{namespace}.svc",
                                },
                                {"name": "KAFKA_PORT", "value": str(PORT)},
                            ],
                            "ports": [{"name": "kafka", "containerPort": PORT}],
                            # -Xmx256m (kafka.sh): about 320 MB resident.
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "384Mi"},
                                "limits": {"memory": "768Mi"},
                            },
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/var/lib/kafka"},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": BROKER, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "kafka", "port": PORT}]},
    }
    return [deployment, service]


def plaintext_job(example: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The example job reading the story's broker over PLAINTEXT: its bootstrap
    address replaced, its SASL Secrets and CA file left out."""
    job = copy.deepcopy(example)
    spec = job["spec"]
    arguments = spec["application"]["arguments"]
    arguments[arguments.index("--bootstrap-servers") + 1] = broker_address(namespace)
    for key in ("secretRefs", "secretMounts"):
        del spec[key]
    for role in ("driver", "executors"):
        spec[role]["env"] = [e for e in spec[role]["env"] if e["name"] != "KAFKA_CA_FILE"]
        if not spec[role]["env"]:
            del spec[role]["env"]
    if not spec["driver"]:
        del spec["driver"]
    return job


class Records:
    """Produces lines of words to the topic through the client pod, and tells the story."""

    def __init__(self, story: Story) -> None:
        self.story = story

    def produce(self, count: int) -> None:
        rng, first = self.story.rng, len(self.story.written)
        lines = {
            f"record-{first + i:05d}": " ".join(rng.choices(WORDS, k=rng.randint(1, 8)))
            for i in range(count)
        }
        argv = [broker_address(self.story.namespace), TOPIC, str(PARTITIONS)]
        answer = pod_exec(
            self.story.core,
            self.story.namespace,
            CLIENT,
            ["python3", "-c", PRODUCE, *argv, json.dumps(list(lines.values()))],
        )
        print(f"produced {count} records: {answer.strip()}")
        self.story.fed(lines)

    def wait_until_read(self) -> None:
        """Waits until the job's output is exact and the driver has planned every record
        of all the topic's partitions (its status shows their lag at 0)."""
        self.story.wait_for_exact_output()

        def planned() -> tuple[bool, object]:
            inputs = self.story.driver_status()["inputs"]
            lag = inputs[0].get("lag", {}) if inputs else {}
            return len(lag) == PARTITIONS and not any(lag.values()), lag

        print(f"lag per partition: {wait_for('the driver to plan every record', planned)}")


@pytest.fixture(scope="module")
def story(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Story]:
    with story_in_namespace(
        cluster, request, "kafka", name=JOB, feeder=READER, outputs={OUT: []}
    ) as story:
        yield story


@pytest.fixture(scope="module")
def records(story: Story) -> Records:
    return Records(story)


def test_1_helm_install_makes_the_operator_ready(story: Story) -> None:
    story.install_operator(watch_own_namespace=True)


def test_2_a_broker_pod_from_the_base_image_answers_a_client(
    cluster: Cluster, story: Story, tmp_path: Path
) -> None:
    (tmp_path / "image").mkdir()
    cluster.build_image(BROKER_IMAGE, broker_context(tmp_path / "image"))
    manifests = tmp_path / "kafka.yaml"
    manifests.write_text(yaml.safe_dump_all(broker_manifests(story.namespace)))
    story.kubectl("apply", "-f", str(manifests))
    # The client runs the kubestream image (built by step 1): the job's confluent-kafka.
    cluster.core.create_namespaced_pod(story.namespace, feeder_pod(CLIENT))
    pods_ready(cluster.core, story.namespace, f"app={CLIENT}", 1)
    address = broker_address(story.namespace)

    def answers() -> tuple[bool, object]:
        seen = json.loads(
            pod_exec(cluster.core, story.namespace, CLIENT, ["python3", "-c", READY, address])
        )
        return seen.get("brokers") == [address], seen

    seen = wait_for(f"a Kafka client to see one broker at {address}", answers, 180, 2)
    print(f"broker answers: {seen}")
    created = json.loads(
        pod_exec(
            cluster.core,
            story.namespace,
            CLIENT,
            ["python3", "-c", CREATE_TOPIC, address, TOPIC, str(PARTITIONS)],
        )
    )
    assert created["partitions"] == list(range(PARTITIONS)), created
    story.kubectl("get", "pods,services", "-o", "wide")


def test_3_the_example_reads_every_partition_and_its_totals_are_exact(
    story: Story, records: Records, tmp_path: Path
) -> None:
    job = plaintext_job(yaml.safe_load(EXAMPLE.read_text()), story.namespace)
    assert job["metadata"]["name"] == JOB, job["metadata"]
    manifest = tmp_path / "kafka-wordcount-job.yaml"
    manifest.write_text(yaml.safe_dump(job))
    since = now()
    story.kubectl("apply", "-f", str(manifest))
    created = wait_for_event(story.core, story.namespace, "DriverCreated", JOB, since=since)
    print(f"Event {created.reason}: {created.message}")
    story.wait_for_running(executors=2)
    records.produce(400)
    story.start_feeder()
    records.wait_until_read()


def test_4_a_deleted_driver_resumes_from_its_checkpoint_exactly(
    story: Story, records: Records
) -> None:
    records.produce(200)  # in flight when the driver goes
    old = story.pod_uid(story.driver)
    since = now()
    story.kubectl("delete", "pod", story.driver, "--wait=false")
    records.produce(200)  # while there is no driver
    recovering = wait_for_event(story.core, story.namespace, "Recovering", JOB, since=since)
    print(f"Event {recovering.reason}: {recovering.message}")
    story.wait_for_new_driver(old)
    story.wait_for_running(executors=2)
    story.driver_recovered()
    records.produce(200)
    records.wait_until_read()


def test_5_a_deleted_executor_is_replaced_and_totals_stay_exact(
    story: Story, records: Records
) -> None:
    records.produce(200)
    story.replace_executor(1, executors=2, while_gone=lambda: records.produce(200))
    records.produce(200)
    records.wait_until_read()
