"""The operator's HTTPS client against a real driver UI server: it reads and drains
with the job's tokens when the certificate verifies under the driver Service's name
and the TLS Secret's CA, and gets nothing from a server another CA signed."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kubestream.driver.api_auth import Access
from kubestream.driver.ui.server import Actions, UIServer, tls_context
from kubestream_operator.driver_status import DriverAPI, decommission, fetch

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
