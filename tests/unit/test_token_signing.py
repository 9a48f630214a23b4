"""Mechanism choice and signature encoding, without a token."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from devices.errors import BadRequest, WrongState
from devices.token.session import KeyType, Mech
from devices.token.signing import (
    SHA256_DIGEST_INFO,
    SignAlgorithm,
    encode_ecdsa,
    plan,
    verify,
)

ALL = frozenset(int(m) for m in Mech)
RAW_ONLY = frozenset({int(Mech.ECDSA), int(Mech.RSA_PKCS), int(Mech.RSA_PKCS_PSS)})


def test_ecdsa_hashes_in_software_and_uses_raw_ecdsa() -> None:
    p = plan(SignAlgorithm.ECDSA_SHA256, KeyType.EC, RAW_ONLY, data=b"abc")
    assert p.mechanism is Mech.ECDSA and p.payload == hashlib.sha256(b"abc").digest()
    assert p.der_encode_ecdsa


def test_pkcs1v15_sends_a_digest_info() -> None:
    p = plan(SignAlgorithm.RSA_PKCS1V15_SHA256, KeyType.RSA, RAW_ONLY, data=b"abc")
    assert p.mechanism is Mech.RSA_PKCS
    assert p.payload == SHA256_DIGEST_INFO + hashlib.sha256(b"abc").digest()


def test_pss_parameters() -> None:
    p = plan(SignAlgorithm.RSA_PSS_SHA256, KeyType.RSA, RAW_ONLY, digest=bytes(32))
    assert p.mechanism is Mech.RSA_PKCS_PSS and p.pss == (int(Mech.SHA256), 2, 32)


def test_token_hashing_needs_the_hash_mechanism() -> None:
    with pytest.raises(WrongState, match="CKM_ECDSA_SHA256"):
        plan(SignAlgorithm.ECDSA_SHA256, KeyType.EC, RAW_ONLY, data=b"x", token_hashes=True)
    p = plan(SignAlgorithm.ECDSA_SHA256, KeyType.EC, ALL, data=b"x", token_hashes=True)
    assert p.mechanism is Mech.ECDSA_SHA256 and p.payload == b"x"


@pytest.mark.parametrize("kwargs", [{}, {"data": b"a", "digest": bytes(32)}, {"digest": b"x"}])
def test_bad_inputs(kwargs: dict[str, bytes]) -> None:
    with pytest.raises(BadRequest):
        plan(SignAlgorithm.ECDSA_SHA256, KeyType.EC, ALL, **kwargs)


def test_algorithm_must_fit_the_key() -> None:
    with pytest.raises(BadRequest, match="does not fit"):
        plan(SignAlgorithm.RSA_PSS_SHA256, KeyType.EC, ALL, data=b"x")


def test_raw_ecdsa_is_der_encoded_and_verifies() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(b"m").digest()
    der = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    r, s = utils.decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert encode_ecdsa(raw) == der
    assert verify(key.public_key(), SignAlgorithm.ECDSA_SHA256, der, data=b"m")
    with pytest.raises(WrongState):
        encode_ecdsa(b"\x01\x02\x03")


def test_verify_rsa_pss() -> None:
    key = rsa.generate_private_key(65537, 2048)
    sig = key.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    assert verify(key.public_key(), SignAlgorithm.RSA_PSS_SHA256, sig, data=b"m")
    assert not verify(key.public_key(), SignAlgorithm.RSA_PSS_SHA256, sig, data=b"n")
