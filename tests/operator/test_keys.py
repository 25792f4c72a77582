"""CURVE keys made without zmq match what libzmq derives and expects."""

import zmq

from kubestream_operator.keys import curve_keypair, x25519, z85_encode


def test_x25519_matches_rfc7748_test_vector() -> None:
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    point = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    assert x25519(scalar, point).hex() == expected


def test_z85_matches_zeromq_rfc32_example() -> None:
    assert z85_encode(bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])) == "HelloWorld"


def test_keypair_is_what_libzmq_derives_from_the_secret() -> None:
    public, secret = curve_keypair()
    assert len(public) == len(secret) == 40
    assert zmq.curve_public(secret.encode()).decode() == public
    assert curve_keypair() != (public, secret)
