"""Signatures made by the token: mechanism choice, hashing and encoding.

The data is hashed with SHA-256 here and the token signs the hash with a raw
mechanism (CKM_ECDSA, CKM_RSA_PKCS over a DigestInfo, CKM_RSA_PKCS_PSS), which every
module has - SoftHSM2 lacks CKM_ECDSA_SHA256. ``token_hashes=True`` asks for the
hashing mechanisms instead (the whole message goes to the token).
ECDSA signatures come back as r||s and are returned DER-encoded (as X.509 and
OpenSSL expect).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum, unique

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from devices.errors import BadRequest, WrongState
from devices.token.keys import PublicKey
from devices.token.session import CKG_MGF1_SHA256, KeyType, Mech, PssParams

SHA256_LEN = 32
# DER prefix of DigestInfo { sha256, OCTET STRING(32) } (RFC 8017 §9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
PSS_SHA256: PssParams = (int(Mech.SHA256), CKG_MGF1_SHA256, SHA256_LEN)


@unique
class SignAlgorithm(StrEnum):
    ECDSA_SHA256 = "ecdsa-sha256"
    RSA_PKCS1V15_SHA256 = "rsa-pkcs1v15-sha256"
    RSA_PSS_SHA256 = "rsa-pss-sha256"

    @property
    def key_type(self) -> KeyType:
        return KeyType.EC if self is SignAlgorithm.ECDSA_SHA256 else KeyType.RSA


@dataclass(frozen=True)
class SignPlan:
    mechanism: Mech
    payload: bytes
    pss: PssParams | None
    der_encode_ecdsa: bool


def default_algorithm(key_type: KeyType) -> SignAlgorithm:
    return (
        SignAlgorithm.ECDSA_SHA256 if key_type is KeyType.EC else SignAlgorithm.RSA_PKCS1V15_SHA256
    )


def plan(
    algorithm: SignAlgorithm,
    key_type: KeyType,
    mechanisms: frozenset[int],
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    token_hashes: bool = False,
) -> SignPlan:
    """Choose the mechanism and the bytes to send, checking the token has the mechanism."""
    if algorithm.key_type is not key_type:
        raise BadRequest(f"algorithm {algorithm.value} does not fit a {key_type.name} key")
    if (data is None) == (digest is None):
        raise BadRequest("give either the data or its SHA-256 digest")
    if digest is not None and len(digest) != SHA256_LEN:
        raise BadRequest(f"a SHA-256 digest is {SHA256_LEN} bytes, got {len(digest)}")
    if token_hashes:
        if data is None:
            raise BadRequest("the token can hash only the data itself, not a digest")
        mech, pss = {
            SignAlgorithm.ECDSA_SHA256: (Mech.ECDSA_SHA256, None),
            SignAlgorithm.RSA_PKCS1V15_SHA256: (Mech.SHA256_RSA_PKCS, None),
            SignAlgorithm.RSA_PSS_SHA256: (Mech.SHA256_RSA_PKCS_PSS, PSS_SHA256),
        }[algorithm]
        _require(mech, mechanisms)
        return SignPlan(mech, data, pss, algorithm is SignAlgorithm.ECDSA_SHA256)
    hashed = digest if digest is not None else hashlib.sha256(data or b"").digest()
    if algorithm is SignAlgorithm.ECDSA_SHA256:
        _require(Mech.ECDSA, mechanisms)
        return SignPlan(Mech.ECDSA, hashed, None, True)
    if algorithm is SignAlgorithm.RSA_PKCS1V15_SHA256:
        _require(Mech.RSA_PKCS, mechanisms)
        return SignPlan(Mech.RSA_PKCS, SHA256_DIGEST_INFO + hashed, None, False)
    _require(Mech.RSA_PKCS_PSS, mechanisms)
    return SignPlan(Mech.RSA_PKCS_PSS, hashed, PSS_SHA256, False)


def _require(mech: Mech, mechanisms: frozenset[int]) -> None:
    if int(mech) not in mechanisms:
        raise WrongState(f"the token does not support mechanism CKM_{mech.name}")


def encode_ecdsa(raw: bytes) -> bytes:
    """PKCS#11 r||s to DER Ecdsa-Sig-Value."""
    if not raw or len(raw) % 2:
        raise WrongState("the token returned a malformed ECDSA signature")
    half = len(raw) // 2
    return utils.encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def verify(
    public_key: PublicKey,
    algorithm: SignAlgorithm,
    signature: bytes,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
) -> bool:
    """Verify in software against the token's public key (True if valid)."""
    if (data is None) == (digest is None):
        raise BadRequest("give either the data or its SHA-256 digest")
    if digest is not None and len(digest) != SHA256_LEN:
        raise BadRequest(f"a SHA-256 digest is {SHA256_LEN} bytes, got {len(digest)}")
    hashed = digest if digest is not None else hashlib.sha256(data or b"").digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    try:
        if algorithm is SignAlgorithm.ECDSA_SHA256:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise BadRequest("ECDSA needs an EC key")
            public_key.verify(signature, hashed, ec.ECDSA(prehashed))
        else:
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise BadRequest("this algorithm needs an RSA key")
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if algorithm is SignAlgorithm.RSA_PKCS1V15_SHA256
                else padding.PSS(padding.MGF1(hashes.SHA256()), SHA256_LEN)
            )
            public_key.verify(signature, hashed, pad, prehashed)
    except InvalidSignature:
        return False
    return True
