"""The operator's HTTPS client against a real driver UI server: it reads and drains
with the job's tokens when the certificate verifies under the driver Service's name
and the TLS Secret's CA, and gets nothing from a server another CA signed.

Then the certificate the operator makes per job (``spec.ui.tls: {}``), against the
real API server and a real ``kubestream driver`` process: the operator verifies the
driver against the job's Secret, refuses a certificate that is not the job's, renews
one in its last third, and the running driver serves the renewed files.
"""

import base64
import os
import secrets
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kubestream.driver.api_auth import Access, api_token, read_token
from kubestream.driver.ui.server import Actions, UIServer, tls_context
from kubestream_operator import certificates
from kubestream_operator.driver_status import DriverAPI, decommission, fetch
from kubestream_operator.kube import Cluster
from kubestream_operator.observe import job_ref
from kubestream_operator.plan import PodState
from kubestream_operator.reconcile import driver_api
from kubestream_operator.spec import parse_spec
from tests.operator.harness import Kube, OperatorProcess, wait_for
from tests.operator.test_driver_live import (  # noqa: F401  (start_job_processes is a fixture)
    Start,
    start_job_processes,
)
from tests.operator.test_lifecycle import job_manifest

NAME = "wc-driver.team.svc"


def openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt signs server.crt for the Service's name; other.crt is a stranger's CA."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other"):
        openssl(
            d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
        )  # fmt: skip
    (d / "san.ext").write_text(f"subjectAltName=DNS:{NAME}\n")
    openssl(
        d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=driver",
        "-keyout", "server.key", "-out", "server.csr",
    )  # fmt: skip
    openssl(
        d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
    )  # fmt: skip
    return d


@pytest.fixture
def server(pki: Path) -> Iterator[tuple[UIServer, list[str]]]:
    drained: list[str] = []
    ui = UIServer(
        lambda limit: {"api_version": "v1", "executors": []},
        CollectorRegistry(),
        "127.0.0.1",
        0,
        Actions(drained.append),
        access=Access(read="read-token", change="change-token"),
        tls=tls_context(str(pki / "server.crt"), str(pki / "server.key")),
    )
    yield ui, drained
    ui.close()


def test_the_operator_reads_and_drains_over_verified_https(
    pki: Path, server: tuple[UIServer, list[str]]
) -> None:
    ui, drained = server
    api = DriverAPI("127.0.0.1", ui.port, (pki / "ca.crt").read_text(), NAME)
    assert fetch(api, "read-token") == {"api_version": "v1", "executors": []}
    assert fetch(api, "") is None  # the read token is needed
    assert decommission(api, "3", "read-token").startswith("the driver answered 401")
    assert decommission(api, "3", "change-token") == ""
    assert drained == ["3"]


def test_a_certificate_from_another_ca_or_for_another_name_is_refused(
    pki: Path, server: tuple[UIServer, list[str]]
) -> None:
    ui, drained = server
    stranger = DriverAPI("127.0.0.1", ui.port, (pki / "other.crt").read_text(), NAME)
    assert fetch(stranger, "read-token") is None
    assert "CERTIFICATE_VERIFY_FAILED" in decommission(stranger, "3", "change-token")
    elsewhere = DriverAPI(
        "127.0.0.1", ui.port, (pki / "ca.crt").read_text(), "other-driver.team.svc"
    )
    assert fetch(elsewhere, "read-token") is None
    assert drained == []


def secret_data(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    found = kube.core.list_namespaced_secret(namespace, field_selector=f"metadata.name={name}")
    data = found.items[0].data if found.items else {}
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def install(directory: Path, cert_pem: str, key_pem: str) -> None:
    """Put a certificate and key where the driver reads them, as the kubelet updates a
    Secret volume: files in a new directory, swapped in by one rename of ``..data``."""
    version = directory / f"..{secrets.token_hex(4)}"
    version.mkdir()
    (version / "tls.crt").write_text(cert_pem)
    (version / "tls.key").write_text(key_pem)
    link = directory / "..data_tmp"
    link.symlink_to(version.name)
    os.replace(link, directory / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")


def listening(host: str) -> bool:
    try:
        socket.create_connection((host, 4040), timeout=2).close()
    except OSError:
        return False
    return True


def served_by(host: str, trusted: str, name: str) -> bool:
    """Whether the driver's certificate verifies against ``trusted`` under ``name``."""
    context = ssl.create_default_context(cadata=trusted)
    with socket.create_connection((host, 4040), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=name):
                return True
        except ssl.SSLCertVerificationError:
            return False


def test_the_operator_verifies_the_certificate_it_made_and_renews_it_on_a_running_driver(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    start_job_processes: Start,  # noqa: F811
    tmp_path: Path,
) -> None:
    kube.apply(namespace, job_manifest(ui={"readAccess": "token", "tls": {}}))
    data = wait_for(
        lambda: (d := secret_data(kube, namespace, "wc-curve")) and "tls.crt" in d and d,
        "the job's certificate in its Secret",
    )
    assert data["ca.crt"].strip() == data["tls.crt"].strip()
    secret_key = data["curve-secret-key"]
    service = f"wc-driver.{namespace}.svc"
    names = certificates.server_names("wc-driver", namespace)
    # The driver starts with a certificate for the right names that is not the job's.
    stranger = certificates.make(names, datetime.now(UTC))
    files = tmp_path / "tls"
    files.mkdir()
    install(files, stranger.cert_pem, stranger.key_pem)
    keys = {
        "KUBESTREAM_CURVE_PUBLIC_KEY": data["curve-public-key"],
        "KUBESTREAM_CURVE_SECRET_KEY": secret_key,
        "KUBESTREAM_UI_READ_ACCESS": "token",
    }
    flags = ["--ui-tls-cert", str(files / "tls.crt"), "--ui-tls-key", str(files / "tls.key")]
    host, _ = start_job_processes(keys, ["exec-0"], *flags)
    wait_for(lambda: "wc-driver" in kube.pods(namespace), "driver pod")
    kube.act_as_kubelet_set_pod_phase(namespace, "wc-driver", "Running", pod_ip=host)

    # The operator's own path to the driver: the job's Secret, read from the API server.
    cluster = Cluster(api=kube.api)
    job = kube.job(namespace, "wc") or {}
    pod = PodState("wc-driver", "uid", "Running", True, "", False, ip=host)

    def api() -> DriverAPI:
        return driver_api(cluster, job_ref(job), parse_spec(job["spec"]), pod)

    assert api().server_name == service
    wait_for(lambda: listening(host), "the driver's UI port")
    refused = decommission(api(), "exec-0", api_token(secret_key))
    assert "CERTIFICATE_VERIFY_FAILED" in refused, refused
    assert fetch(api(), read_token(secret_key)) is None
    assert "batchDelay" not in kube.status(namespace, "wc")

    # The kubelet puts the Secret's certificate in place: the same driver process serves
    # it, and the operator reads the job's batches over verified HTTPS.
    install(files, data["tls.crt"], data["tls.key"])
    wait_for(lambda: kube.status(namespace, "wc").get("batchDelay"), "batch delay over HTTPS")
    assert (fetch(api(), read_token(secret_key)) or {}).get("api_version") == "v1"

    # A certificate in the last third of its life is renewed; until the kubelet swaps
    # the files, the driver serves the old one, which stays trusted.
    driver_uid = kube.pods(namespace)["wc-driver"].metadata.uid
    aged = certificates.make(names, datetime.now(UTC) - timedelta(days=70))
    pem = {"tls.crt": aged.cert_pem, "tls.key": aged.key_pem, "ca.crt": aged.cert_pem}
    kube.core.patch_namespaced_secret("wc-curve", namespace, {"stringData": pem})
    install(files, aged.cert_pem, aged.key_pem)
    renewed = wait_for(
        lambda: (d := secret_data(kube, namespace, "wc-curve"))["tls.crt"] != aged.cert_pem and d,
        "the operator to renew the certificate",
    )
    assert renewed["ca.crt"].startswith(renewed["tls.crt"].strip())
    assert aged.cert_pem.strip() in renewed["ca.crt"]
    assert renewed["curve-secret-key"] == secret_key  # the keys stay: no pod restarts
    assert fetch(api(), read_token(secret_key)) is not None
    assert not served_by(host, renewed["tls.crt"], service)
    install(files, renewed["tls.crt"], renewed["tls.key"])
    assert served_by(host, renewed["tls.crt"], service)
    assert fetch(api(), read_token(secret_key)) is not None
    reasons = kube.event_reasons(namespace, "wc")
    assert "CertificateRenewed" in reasons
    assert "KeysChanged" not in reasons and "SpecChanged" not in reasons
    assert kube.pods(namespace)["wc-driver"].metadata.uid == driver_uid
    # No line of any private key in the job's status, its Events or the operator's log.
    shown = kube.kubectl("get", "events,sj", "-n", namespace, "-o", "json").stdout
    shown += operator.log.read_text(errors="replace")
    for key in (data["tls.key"], aged.key_pem, renewed["tls.key"]):
        assert not [line for line in key.splitlines()[1:-1] if line in shown]
