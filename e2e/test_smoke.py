"""Smoke test of the cluster itself, before any kubestream part runs on it:
locally built images, Deployments, Service DNS, PVCs and container restarts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

from conftest import Cluster
from waits import pod_exec, pods_ready, wait_for, wait_for_event, wait_for_field

IMAGE = "kubestream/e2e-smoke:1"
SMOKE = Path(__file__).resolve().parent / "smoke"


@pytest.fixture(scope="module")
def smoke_image(cluster: Cluster) -> str:
    cluster.build_image(IMAGE, SMOKE)
    return IMAGE


def _container(
    image: str, volume_mounts: list[client.V1VolumeMount] | None = None
) -> client.V1Container:
    return client.V1Container(
        name="smoke",
        image=image,
        image_pull_policy="IfNotPresent",  # the image exists only on the nodes
        ports=[client.V1ContainerPort(container_port=8080)],
        readiness_probe=client.V1Probe(
            tcp_socket=client.V1TCPSocketAction(port=8080), period_seconds=1
        ),
        volume_mounts=volume_mounts,
    )


def _deploy(cluster: Cluster, namespace: str, image: str, replicas: int) -> None:
    labels = {"app": "smoke"}
    cluster.apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="smoke"),
            spec=client.V1DeploymentSpec(
                replicas=replicas,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[_container(image)]),
                ),
            ),
        ),
    )
    cluster.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="smoke"),
            spec=client.V1ServiceSpec(
                selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )


# Asks the URL 40 times; prints who answered, and errors as "error:<reason>"
# (until kube-proxy has the endpoints, a Service's address is unreachable).
FETCH = (
    "import sys, urllib.request\n"
    "seen = set()\n"
    "for _ in range(40):\n"
    "    try:\n"
    "        seen.add(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n"
    "    except OSError as err:\n"
    "        seen.add('error:' + str(getattr(err, 'reason', err)).replace(' ', '_'))\n"
    "print(' '.join(sorted(seen)))\n"
)


def test_deployment_ready_and_pods_reach_each_other_by_service_dns(
    cluster: Cluster, namespace: str, smoke_image: str
) -> None:
    _deploy(cluster, namespace, smoke_image, replicas=2)
    wait_for_field(
        "Deployment smoke",
        lambda: cluster.apps.read_namespaced_deployment(name="smoke", namespace=namespace),
        "status.ready_replicas",
        2,
        timeout=180,
    )
    scaled = wait_for_event(cluster.core, namespace, "ScalingReplicaSet", "smoke")
    print(f"Event {scaled.reason}: {scaled.message}")
    first, second = pods_ready(cluster.core, namespace, "app=smoke", 2)
    url = f"http://smoke.{namespace}.svc.cluster.local/"
    # From the first pod, through the Service's DNS name: the answers must come
    # from both pods, so the second one was reached over the pod network.
    # kube-proxy picks up the second endpoint a moment after the pod is Ready,
    # so ask in rounds until it answers (or the wait reports who did).
    answered: set[str] = set()

    def second_answers() -> tuple[bool, object]:
        out = pod_exec(cluster.core, namespace, first, ["python3", "-c", FETCH, url])
        answered.update(out.split())
        return second in answered, f"answers and errors so far: {sorted(answered)}"

    wait_for(f"{second} to answer {first} via {url}", second_answers, timeout=60)
    print(f"{first} asked {url}; answered by: {sorted(answered)}")


def _pvc_pod(name: str, image: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            security_context=client.V1PodSecurityContext(fs_group=1000),
            containers=[
                _container(
                    image,
                    volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                )
            ],
            volumes=[
                client.V1Volume(
                    name="data",
                    persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name="data"
                    ),
                )
            ],
        ),
    )


def test_pvc_binds_and_keeps_data_when_its_pod_is_recreated(
    cluster: Cluster, namespace: str, smoke_image: str
) -> None:
    core = cluster.core
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name="data"),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=client.V1VolumeResourceRequirements(requests={"storage": "16Mi"}),
            ),
        ),
    )
    core.create_namespaced_pod(namespace, _pvc_pod("writer", smoke_image))
    claim = wait_for_field(
        "PVC data",
        lambda: core.read_namespaced_persistent_volume_claim("data", namespace),
        "status.phase",
        "Bound",
    )
    print(f"PVC data bound to {claim.spec.volume_name} ({claim.spec.storage_class_name})")
    provisioned = wait_for_event(core, namespace, "ProvisioningSucceeded", "data")
    print(f"Event {provisioned.reason}: {provisioned.message}")
    pods_ready(core, namespace, "", 1)
    write = "open('/data/proof', 'w').write('written by the first pod')"
    pod_exec(core, namespace, "writer", ["python3", "-c", write])

    core.delete_namespaced_pod("writer", namespace, grace_period_seconds=0)
    wait_for(
        "pod writer to be gone",
        lambda: (
            not [p for p in core.list_namespaced_pod(namespace).items],
            [p.metadata.name for p in core.list_namespaced_pod(namespace).items],
        ),
    )
    core.create_namespaced_pod(namespace, _pvc_pod("reader", smoke_image))
    pods_ready(core, namespace, "", 1)
    read = "print(open('/data/proof').read())"
    content = pod_exec(core, namespace, "reader", ["python3", "-c", read]).strip()
    print(f"second pod read: {content!r}")
    assert content == "written by the first pod"


def test_kubelet_restarts_a_killed_container(
    cluster: Cluster, namespace: str, smoke_image: str
) -> None:
    core = cluster.core
    core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="victim", labels={"app": "victim"}),
            spec=client.V1PodSpec(containers=[_container(smoke_image)]),
        ),
    )
    pods_ready(core, namespace, "app=victim", 1)
    before = core.read_namespaced_pod("victim", namespace).status.container_statuses[0]
    assert before.restart_count == 0
    # SIGKILL the server (tini is PID 1): the container exits as if it crashed.
    # The exec may die with the container, so its own exit status is no signal.
    kill = "import os, signal; os.kill(int(open('/tmp/server.pid').read()), signal.SIGKILL)"
    pod_exec(core, namespace, "victim", ["python3", "-c", kill], check=False)
    pod = wait_for_field(
        "pod victim",
        lambda: core.read_namespaced_pod("victim", namespace),
        "status.container_statuses.0.restart_count",
        1,
    )
    last = pod.status.container_statuses[0].last_state.terminated
    print(f"container restarted; last state: exit code {last.exit_code} ({last.reason})")
    assert last.exit_code != 0
    pods_ready(core, namespace, "app=victim", 1)
