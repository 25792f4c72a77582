"""kopf handlers: every trigger funnels into one level-based reconcile per job.

Create, update, resume, a periodic timer and any change to one of the job's
pods all call ``reconcile`` under a per-job lock, so two triggers never race on
the same job. Deletion runs behind a finalizer that stops the driver (with its
graceful-stop time) before the executors, then lets garbage collection remove
the rest. The finalizer waits for the pods inside its handler rather than by
failing and retrying, so kopf logs an error only when the wait outlives what
the graceful stop allows.
"""

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import kopf

from kubestream_operator import manifests as m
from kubestream_operator.kube import GROUP, PLURAL, VERSION, Cluster
from kubestream_operator.manifests import JOB_LABEL
from kubestream_operator.metrics import OperatorMetrics
from kubestream_operator.plan import parse_time
from kubestream_operator.reconcile import announce_deletion, graceful_stop_seconds, reconcile, stop

log = logging.getLogger(__name__)

FINALIZER = "kubestream.io/graceful-stop"
MANAGED = {"app.kubernetes.io/managed-by": "kubestream-operator"}
# How often the deletion finalizer looks whether the pods have stopped.
STOP_POLL_SECONDS = 1.0
# Beyond the driver's and then the executors' graceful-stop time: the kubelet's
# SIGKILL and the API's confirmation.
STOP_SLACK_SECONDS = 30.0


def build_registry(
    cluster: Cluster, metrics: OperatorMetrics, resync: float
) -> kopf.OperatorRegistry:
    """A kopf registry with the operator's handlers bound to ``cluster``."""
    registry = kopf.OperatorRegistry()
    locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def converge(namespace: str, name: str) -> None:
        with locks[namespace, name]:
            reconcile(cluster, namespace, name, metrics)

    @kopf.on.login(id="kubeconfig", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A private registry gets no default login handler; use the client's config.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(id="settings", registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        # Keep kopf's bookkeeping in annotations: status belongs to the operator's state machine.
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
            prefix="kubestream.io"
        )
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="kubestream.io", key="last-handled-configuration"
        )
        # Watches silently stall behind some load balancers; reconnect regularly.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # The operator posts its own Events for every transition; kopf's are for problems.
        settings.posting.level = logging.WARNING
        settings.execution.max_workers = 8

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile", registry=registry)
    def on_change(*, namespace: str | None, name: str, **_: Any) -> None:
        converge(namespace or "", name)

    @kopf.timer(GROUP, VERSION, PLURAL, interval=resync, id="resync", registry=registry)
    def on_timer(*, namespace: str | None, name: str, **_: Any) -> None:
        converge(namespace or "", name)

    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod-changed", registry=registry)
    def on_pod(*, namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
        job = labels.get(JOB_LABEL)
        if job and namespace:
            converge(namespace, job)

    def stop_locked(namespace: str, name: str, job: m.Manifest) -> bool:
        with locks[namespace, name]:
            return stop(cluster, job)

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="graceful-stop", registry=registry)
    async def on_delete(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        namespace = namespace or ""
        job = dict(body)
        await asyncio.to_thread(announce_deletion, cluster, job)
        # The driver, then the executors, each get the graceful-stop time.
        since = parse_time(body.meta.get("deletionTimestamp")) or time.time()
        deadline = since + 2 * graceful_stop_seconds(job) + STOP_SLACK_SECONDS
        while not await asyncio.to_thread(stop_locked, namespace, name, job):
            if time.time() >= deadline:
                raise kopf.TemporaryError(
                    f"the job's pods have not stopped {time.time() - since:.0f}s after "
                    "its deletion, longer than their graceful-stop time allows: "
                    "are their nodes unreachable?",
                    delay=10,
                )
            log.debug("%s/%s: waiting for the job's pods to stop", namespace, name)
            await asyncio.sleep(STOP_POLL_SECONDS)
        metrics.set_phase(namespace, name, None)
        locks.pop((namespace, name), None)

    return registry
