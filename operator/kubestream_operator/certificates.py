"""The certificate of a job's UI port when the user names no Secret of their own.

The operator makes one self-signed certificate per job, keeps it in the job's Secret
(``tls.crt``, ``tls.key``, and ``ca.crt``: the certificates to trust), mounts it in
the driver and verifies the driver against that job's ``ca.crt`` and nothing else.

Self-signed per job rather than one operator CA signing per-job certificates: a CA's
key would sign for every job, so whoever read it could impersonate every driver, and
it would need storage, RBAC and rotation of its own. A job's own certificate is
trusted for that job only, is kept beside the job's CURVE keys (as secret as they
are), and goes when the job goes (the Secret is owned by it). Prometheus or a person
verifies a driver with its job's ``ca.crt``.

A certificate lives ``LIFETIME`` and is renewed once less than a third of its life is
left (cert-manager's default), so a failed renewal has weeks to be retried. The
kubelet updates the driver's mounted files a minute or so after the Secret changes,
and the driver serves the old certificate until then: ``ca.crt`` keeps the previous
certificate until it expires, so the operator trusts both meanwhile.

The reconciler calls ``make`` and ``trust_bundle`` to write a Secret; ``validity`` and
``renewal_due`` decide when (pure, but for parsing).
"""

import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LIFETIME = timedelta(days=90)
RENEW_FRACTION = 1 / 3
# A certificate starts this much before it is made: clocks of the operator's and the
# driver's nodes, and of a person's machine, may be behind by that much.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate and its PEM private key (never shown: not in repr)."""

    cert_pem: str
    key_pem: str = field(repr=False)


@dataclass(frozen=True)
class Validity:
    """When a certificate starts and stops being valid, seconds since the epoch."""

    not_before: float
    not_after: float


def server_names(service: str, namespace: str) -> tuple[str, ...]:
    """The names a job's driver answers to: its Service's DNS names (the operator asks
    for ``<service>.<namespace>.svc``), and ``localhost`` for `kubectl port-forward`."""
    return (
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}",
        service,
        "localhost",
    )


def make(names: Sequence[str], now: datetime, lifetime: timedelta = LIFETIME) -> Certificate:
    """A new key (ECDSA P-256) and a certificate it signs itself for ``names`` (DNS names;
    127.0.0.1 too), valid from ``now`` (less CLOCK_SKEW) for ``lifetime``. Only a TLS
    server's: it can sign nothing else (not a CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternative = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    ]
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Certificate(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


def _certificates(pem: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def _validity(cert: x509.Certificate) -> Validity:
    return Validity(cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp())


def validity(cert_pem: str | None) -> Validity | None:
    """The validity of the first certificate in ``cert_pem``; None if there is none."""
    found = _certificates(cert_pem or "")
    return _validity(found[0]) if found else None


def renewal_due(current: Validity | None, now: float, fraction: float = RENEW_FRACTION) -> bool:
    """Whether to make a new certificate at ``now`` (seconds since the epoch): there is
    none, less than ``fraction`` of its life is left, or it is not valid yet (made under
    a clock that was ahead: it would be refused until then)."""
    if current is None:
        return True
    life = current.not_after - current.not_before
    return now >= current.not_after - fraction * life or now < current.not_before


def trust_bundle(new_cert_pem: str, previous_bundle: str | None, now: float) -> str:
    """``ca.crt`` after a renewal: the new certificate, then those of the previous
    bundle that have not expired at ``now`` (the driver may still serve one)."""
    kept = [new_cert_pem.strip()]
    for cert in _certificates(previous_bundle or ""):
        pem = cert.public_bytes(serialization.Encoding.PEM).decode().strip()
        if _validity(cert).not_after > now and pem not in kept:
            kept.append(pem)
    return "\n".join(kept) + "\n"
