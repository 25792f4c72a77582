"""CURVE key pairs for a job's ZeroMQ sockets, generated without importing zmq.

Only the runtime's transport module may import zmq, so the operator computes the
Curve25519 key pair itself (RFC 7748 X25519) and encodes it in Z85, the text form
``zmq.curve_keypair()`` returns. Called by the reconciler when a job's Secret is
missing.
"""

import secrets

_P = 2**255 - 19
_A24 = 121665
_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def _clamp(scalar: bytes) -> int:
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def x25519(scalar: bytes, u_point: bytes) -> bytes:
    """Curve25519 scalar multiplication (RFC 7748, section 5), constant structure."""
    k = _clamp(scalar)
    x1 = int.from_bytes(u_point, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def z85_encode(data: bytes) -> str:
    """Z85 (ZeroMQ RFC 32) text for data whose length is a multiple of 4."""
    if len(data) % 4:
        raise ValueError("Z85 needs a length that is a multiple of 4")
    out: list[str] = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i : i + 4], "big")
        chunk = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            chunk.append(_Z85[digit])
        out.extend(reversed(chunk))
    return "".join(out)


def curve_keypair() -> tuple[str, str]:
    """A fresh (public, secret) CURVE key pair as 40-character Z85 strings."""
    secret = secrets.token_bytes(32)
    public = x25519(secret, (9).to_bytes(32, "little"))
    return z85_encode(public), z85_encode(secret)
