"""The one module that talks to the Kubernetes API (import-linter enforces it).

A thin, typed wrapper over the official client: raw JSON in and out, no
decisions. Every failure becomes an ApiError carrying the server's message,
which never contains Secret data (the operator only sends keys to the API in
Secret bodies and never echoes a response body).
"""

import contextlib
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubestream_operator.manifests import JobRef, Manifest, owner_reference

GROUP = "kubestream.io"
VERSION = "v1alpha1"
PLURAL = "streamingjobs"

Raw = dict[str, Any]


class ApiError(Exception):
    """A Kubernetes API call failed; ``status`` is the HTTP code (0 if none).

    ``namespace_terminating`` is set when the server refused to create an
    object because its namespace is being deleted (cause NamespaceTerminating).
    """

    def __init__(self, action: str, exc: ApiException) -> None:
        self.status = int(exc.status or 0)
        reason = str(exc.reason or "error")
        causes: list[Any] = []
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            body = json.loads(exc.body or "{}")
            reason = body.get("message") or reason
            causes = (body.get("details") or {}).get("causes") or []
        self.namespace_terminating = any(
            isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes
        )
        super().__init__(f"{action}: {reason}")


def load_config() -> None:
    """In-cluster credentials when running in a pod, else the local kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def _json(response: Any) -> Raw:
    data: Raw = json.loads(response.data)
    return data


class Cluster:
    """Reads and writes a job's objects. Built once per operator process."""

    def __init__(
        self,
        ui_namespaces: tuple[str, ...] = (),
        scrape_token: str = "",
        api: client.ApiClient | None = None,
    ) -> None:
        # The operator's own settings that shape what it creates: the namespaces whose
        # pods may reach a job's UI port, the token a job's Secret gives its scraper.
        # ``api``: a client of its own (a test's); else the loaded configuration's.
        self.ui_namespaces = ui_namespaces
        self.scrape_token = scrape_token
        self.api = api or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.networking = client.NetworkingV1Api(self.api)

    def _call(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Raw:
        try:
            return _json(fn(*args, _preload_content=False, **kwargs))
        except ApiException as exc:
            raise ApiError(action, exc) from None

    def _get(self, action: str, fn: Callable[..., Any], *args: Any) -> Raw | None:
        try:
            return self._call(action, fn, *args)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def get_job(self, namespace: str, name: str) -> Raw | None:
        return self._get(
            f"read StreamingJob {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
        )

    def get_child(self, kind: str, namespace: str, name: str) -> Raw | None:
        readers: dict[str, Callable[..., Any]] = {
            "Secret": self.core.read_namespaced_secret,
            "ServiceAccount": self.core.read_namespaced_service_account,
            "ConfigMap": self.core.read_namespaced_config_map,
            "Service": self.core.read_namespaced_service,
            "PersistentVolumeClaim": self.core.read_namespaced_persistent_volume_claim,
            "NetworkPolicy": self.networking.read_namespaced_network_policy,
        }
        reader = readers[kind]
        return self._get(f"read {kind} {namespace}/{name}", reader, name, namespace)

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether ``namespace`` is being deleted (or gone): nothing can be created there.

        A list by name, which kopf's cluster-wide namespace rights already allow.
        """
        found = self._call(
            f"read namespace {namespace}",
            self.core.list_namespace,
            field_selector=f"metadata.name={namespace}",
        )
        items: list[Raw] = found.get("items") or []
        return not items or any(
            ns["metadata"].get("deletionTimestamp")
            or (ns.get("status") or {}).get("phase") == "Terminating"
            for ns in items
        )

    def list_pods(self, namespace: str, selector: str) -> list[Raw]:
        found = self._call(
            f"list pods in {namespace}",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
        )
        items: list[Raw] = found.get("items") or []
        return items

    def create(self, manifest: Manifest) -> bool:
        """Create one namespaced child; False if it already exists."""
        kind = manifest["kind"]
        meta = manifest["metadata"]
        creators: dict[str, Callable[..., Any]] = {
            "Secret": self.core.create_namespaced_secret,
            "ServiceAccount": self.core.create_namespaced_service_account,
            "ConfigMap": self.core.create_namespaced_config_map,
            "Service": self.core.create_namespaced_service,
            "PersistentVolumeClaim": self.core.create_namespaced_persistent_volume_claim,
            "Pod": self.core.create_namespaced_pod,
            "NetworkPolicy": self.networking.create_namespaced_network_policy,
        }
        creator = creators[kind]
        try:
            self._call(f"create {kind} {meta['name']}", creator, meta["namespace"], manifest)
        except ApiError as err:
            if err.status == 409:
                return False
            raise
        return True

    def replace_config_map(self, manifest: Manifest) -> None:
        meta = manifest["metadata"]
        self._call(
            f"update ConfigMap {meta['name']}",
            self.core.patch_namespaced_config_map,
            meta["name"],
            meta["namespace"],
            {"data": manifest["data"]},
        )

    def update_secret(
        self,
        namespace: str,
        name: str,
        string_data: Mapping[str, str | None],
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Set keys of a Secret (None: remove the key), keeping the others (the job's
        certificate on renewal, its scrape token on rotation); and annotations likewise."""
        body: dict[str, Any] = {
            "stringData": {k: v for k, v in string_data.items() if v is not None},
            "data": {k: None for k, v in string_data.items() if v is None},
        }
        if annotations:
            body["metadata"] = {"annotations": dict(annotations)}
        self._call(
            f"update Secret {name}", self.core.patch_namespaced_secret, name, namespace, body
        )

    def replace_network_policy(self, manifest: Manifest) -> None:
        meta = manifest["metadata"]
        self._call(
            f"update NetworkPolicy {meta['name']}",
            self.networking.patch_namespaced_network_policy,
            meta["name"],
            meta["namespace"],
            {"spec": manifest["spec"]},
        )

    def set_claim_owned(self, job: JobRef, name: str, owned: bool) -> None:
        """Add or remove the job's owner reference on the checkpoint claim."""
        claim = self.get_child("PersistentVolumeClaim", job.namespace, name)
        if claim is None:
            return
        refs = [
            r for r in claim["metadata"].get("ownerReferences") or [] if r.get("uid") != job.uid
        ]
        if owned:
            refs.append(owner_reference(job))
        self._call(
            f"update owner of PersistentVolumeClaim {name}",
            self.core.patch_namespaced_persistent_volume_claim,
            name,
            job.namespace,
            {"metadata": {"ownerReferences": refs or None}},
        )

    def delete_pod(self, namespace: str, name: str, uid: str, grace: int) -> None:
        """Delete a pod if it is still the one observed (uid precondition)."""
        body = {"gracePeriodSeconds": grace, "preconditions": {"uid": uid}}
        try:
            self._call(
                f"delete pod {namespace}/{name}",
                self.core.delete_namespaced_pod,
                name,
                namespace,
                body=body,
            )
        except ApiError as err:
            if err.status not in (404, 409):
                raise

    def scale_job(
        self,
        job: JobRef,
        resource_version: str,
        replicas: int | None,
        annotations: Mapping[str, str | None],
    ) -> None:
        """Set spec.executors.replicas (unless None) and annotations (None removes one)
        in one patch.

        Conditional on ``resource_version``: a job changed since it was read
        raises ApiError with status 409, and nothing is changed.
        """
        body: Raw = {
            "metadata": {"resourceVersion": resource_version, "annotations": dict(annotations)}
        }
        if replicas is not None:
            body["spec"] = {"executors": {"replicas": replicas}}
        self._call(
            f"scale StreamingJob {job.namespace}/{job.name}",
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            job.namespace,
            PLURAL,
            job.name,
            body,
        )

    def patch_job_status(self, job: JobRef, status: Mapping[str, Any]) -> None:
        try:
            self._call(
                f"update status of StreamingJob {job.namespace}/{job.name}",
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                job.namespace,
                PLURAL,
                job.name,
                {"status": dict(status)},
            )
        except ApiError as err:
            if err.status != 404:
                raise

    def post_event(self, job: JobRef, type_: str, reason: str, message: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{job.name}.{uuid.uuid4().hex[:16]}", "namespace": job.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "StreamingJob",
                "name": job.name,
                "namespace": job.namespace,
                "uid": job.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "kubestream-operator"},
            "reportingComponent": "kubestream-operator",
        }
        self._call(
            f"post event on {job.name}", self.core.create_namespaced_event, job.namespace, event
        )

    def ensure_peering(self, name: str, namespaces: list[str]) -> None:
        """Create the kopf peering object(s) the replicas coordinate through."""
        body: Raw = {"apiVersion": "kopf.dev/v1", "metadata": {"name": name}}
        try:
            if not namespaces:
                self._call(
                    f"create ClusterKopfPeering {name}",
                    self.custom.create_cluster_custom_object,
                    "kopf.dev",
                    "v1",
                    "clusterkopfpeerings",
                    body | {"kind": "ClusterKopfPeering"},
                )
            for ns in namespaces:
                self._call(
                    f"create KopfPeering {ns}/{name}",
                    self.custom.create_namespaced_custom_object,
                    "kopf.dev",
                    "v1",
                    ns,
                    "kopfpeerings",
                    body | {"kind": "KopfPeering"},
                )
        except ApiError as err:
            if err.status != 409:
                raise
