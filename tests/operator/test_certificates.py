"""The operator's per-job UI certificate: what it is made for, when it is renewed, and
which certificates stay trusted across a renewal. Certificates are made for real (the
cryptography library) and checked by the standard library's TLS, as the operator does."""

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from kubestream_operator import certificates as c

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
NAMES = c.server_names("wc-driver", "team")


def test_the_certificate_names_the_service_and_is_no_ca() -> None:
    made = c.make(NAMES, NOW)
    cert = x509.load_pem_x509_certificate(made.cert_pem.encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == set(NAMES)
    assert "wc-driver.team.svc" in NAMES and "localhost" in NAMES
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert c.validity(made.cert_pem) == c.Validity(
        (NOW - c.CLOCK_SKEW).timestamp(), (NOW + c.LIFETIME).timestamp()
    )
    assert made.key_pem not in repr(made)  # never shown by a log line that prints it


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[c.Certificate, int]]:
    """A TLS server on loopback presenting a freshly made certificate."""
    made = c.make(NAMES, datetime.now(UTC))
    (tmp_path / "tls.crt").write_text(made.cert_pem)
    (tmp_path / "tls.key").write_text(made.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield made, listener.getsockname()[1]
    listener.close()
    thread.join(5)


def handshake(port: int, trusted: str, name: str) -> bytes:
    context = ssl.create_default_context(cadata=trusted)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        return tls.recv(2)


def test_it_verifies_as_itself_under_the_services_name_and_nothing_else(
    served: tuple[c.Certificate, int],
) -> None:
    made, port = served
    assert handshake(port, made.cert_pem, "wc-driver.team.svc") == b"ok"
    assert handshake(port, made.cert_pem, "localhost") == b"ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, made.cert_pem, "other-driver.team.svc")
    stranger = c.make(NAMES, datetime.now(UTC))  # same names, another key: another job's
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(port, stranger.cert_pem, "wc-driver.team.svc")
    # A renewal's bundle trusts the new certificate and the one the driver still serves.
    bundle = c.trust_bundle(stranger.cert_pem, made.cert_pem, datetime.now(UTC).timestamp())
    assert handshake(port, bundle, "wc-driver.team.svc") == b"ok"


DAY = 86400.0


@given(
    start=st.floats(0, 4e9),
    life=st.floats(60, 400 * DAY),
    at=st.one_of(st.floats(-1, -0.01), st.floats(0, 0.66), st.floats(0.67, 2)),
)
def test_renewal_is_due_in_the_last_third_of_a_life_or_outside_it(
    start: float, life: float, at: float
) -> None:
    """Not before two thirds of its life (nor while early renewals could pile up); from
    then on, and after expiry; and for a certificate not valid yet."""
    now = start + at * life
    assert c.renewal_due(c.Validity(start, start + life), now) == (at < 0 or at >= 0.67)


def test_renewal_is_due_without_a_certificate() -> None:
    assert c.renewal_due(None, NOW.timestamp())
    assert c.validity("not a certificate") is None
    assert c.validity(None) is None


def test_a_renewal_keeps_trusting_the_unexpired_predecessor_only() -> None:
    old = c.make(NAMES, NOW - timedelta(days=60))
    expired = c.make(NAMES, NOW - timedelta(days=200))
    new = c.make(NAMES, NOW)
    now = NOW.timestamp()
    bundle = c.trust_bundle(new.cert_pem, old.cert_pem + expired.cert_pem, now)
    kept = [cert.strip() for cert in bundle.split("-----END CERTIFICATE-----") if cert.strip()]
    assert len(kept) == 2
    assert bundle.startswith(new.cert_pem.strip())
    assert old.cert_pem.strip() in bundle and expired.cert_pem.strip() not in bundle
    # Renewing again drops nothing twice and keeps only what is still valid.
    again = c.trust_bundle(new.cert_pem, bundle, now)
    assert again == bundle
    assert c.trust_bundle(new.cert_pem, None, now) == new.cert_pem.strip() + "\n"
    assert c.trust_bundle(new.cert_pem, "garbage", now) == new.cert_pem.strip() + "\n"
