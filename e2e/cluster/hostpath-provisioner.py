#!/usr/bin/env python3
"""Dynamic host-path volume provisioner for the local one-node cluster.

e2e/cluster/up runs it as a host process. It serves StorageClasses whose
provisioner is ``kubestream.io/host-path``: for each pending claim it creates a
directory under ``--root`` and a PersistentVolume pre-bound to the claim (the
PV controller then binds the two); for each Released volume it made with the
Delete policy it removes the directory and the volume. Standard library only,
so it needs no virtualenv; it polls the API every second, which is plenty for
one node.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROVISIONER = "kubestream.io/host-path"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


class Api:
    """Just enough of a Kubernetes client: JSON over HTTPS with a client cert."""

    def __init__(self, kubeconfig: Path) -> None:
        cfg = _parse_kubeconfig(kubeconfig)
        self.server = cfg["server"]
        self.ctx = ssl.create_default_context(cafile=cfg["certificate-authority"])
        self.ctx.load_cert_chain(cfg["client-certificate"], cfg["client-key"])

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            return json.load(resp)


def _parse_kubeconfig(path: Path) -> dict[str, str]:
    # The kubeconfig up writes is flat "key: value" YAML; no YAML parser needed.
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().lstrip("- ").partition(": ")
        if sep and key in {"server", "certificate-authority", "client-certificate", "client-key"}:
            out[key] = value.strip()
    return out


def our_classes(api: Api) -> tuple[set[str], str | None]:
    classes = api.call("GET", "/apis/storage.k8s.io/v1/storageclasses")["items"]
    ours = {c["metadata"]["name"] for c in classes if c.get("provisioner") == PROVISIONER}
    default = next(
        (
            c["metadata"]["name"]
            for c in classes
            if c["metadata"].get("annotations", {}).get(DEFAULT_CLASS) == "true"
        ),
        None,
    )
    return ours, default


def event(api: Api, claim: dict[str, Any], reason: str, message: str) -> None:
    """Posts an Event on the claim, as the CSI external-provisioner does."""
    meta = claim["metadata"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
        "reason": reason,
        "message": message,
        "type": "Normal",
        "source": {"component": PROVISIONER},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    api.call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body)


def provision(api: Api, root: Path, claim: dict[str, Any], sc: str) -> None:
    meta, spec = claim["metadata"], claim["spec"]
    name = f"pvc-{meta['uid']}"
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # pods run as any non-root user
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": spec["resources"]["requests"]["storage"]},
            "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": sc,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(path), "type": "Directory"},
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
        },
    }
    try:
        api.call("POST", "/api/v1/persistentvolumes", pv)
        print(f"provisioned {name} for {meta['namespace']}/{meta['name']} at {path}", flush=True)
        event(api, claim, "ProvisioningSucceeded", f"Successfully provisioned volume {name}")
    except urllib.error.HTTPError as err:
        if err.code != 409:  # 409: made on an earlier pass
            raise


def reconcile(api: Api, root: Path) -> None:
    ours, default = our_classes(api)
    pvs = api.call("GET", "/api/v1/persistentvolumes")["items"]
    claimed = {pv["spec"].get("claimRef", {}).get("uid") for pv in pvs}
    for claim in api.call("GET", "/api/v1/persistentvolumeclaims")["items"]:
        sc = claim["spec"].get("storageClassName", default)
        if (
            claim.get("status", {}).get("phase") == "Pending"
            and not claim["spec"].get("volumeName")
            and sc in ours
            and claim["metadata"]["uid"] not in claimed
        ):
            provision(api, root, claim, sc)
    for pv in pvs:
        annotations = pv["metadata"].get("annotations", {})
        if (
            annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER
            and pv.get("status", {}).get("phase") == "Released"
            and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
        ):
            name = pv["metadata"]["name"]
            shutil.rmtree(root / name, ignore_errors=True)
            api.call("DELETE", f"/api/v1/persistentvolumes/{name}")
            print(f"deleted {name}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    api = Api(args.kubeconfig)
    print(f"host-path provisioner for {PROVISIONER}, volumes under {args.root}", flush=True)
    while True:
        try:
            reconcile(api, args.root)
        except (OSError, urllib.error.URLError, KeyError) as err:
            # The API server restarts with the cluster; keep going.
            print(f"reconcile failed, retrying: {err!r}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
