"""Key specs the token generates, and public keys read back from the token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices.errors import WrongState
from devices.token.session import KeyType, ObjectRecord

# DER of the namedCurve OIDs (ECParameters) for CKA_EC_PARAMS.
EC_PARAMS_P256 = bytes.fromhex("06082a8648ce3d030107")
EC_PARAMS_P384 = bytes.fromhex("06052b81040022")
_CURVES: dict[bytes, ec.EllipticCurve] = {
    EC_PARAMS_P256: ec.SECP256R1(),
    EC_PARAMS_P384: ec.SECP384R1(),
}


@unique
class KeySpec(StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"

    @property
    def key_type(self) -> KeyType:
        return KeyType.EC if self.value.startswith("ec") else KeyType.RSA

    @property
    def rsa_bits(self) -> int:
        return int(self.value.split("-")[1]) if self.key_type is KeyType.RSA else 0

    @property
    def ec_params(self) -> bytes:
        return {KeySpec.EC_P256: EC_PARAMS_P256, KeySpec.EC_P384: EC_PARAMS_P384}.get(self, b"")


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class KeyInfo:
    """A key pair on the token as seen from outside (never private material)."""

    key_id: bytes
    label: str
    key_type: KeyType
    bits: int
    public_key_der: bytes  # SubjectPublicKeyInfo
    has_private: bool
    has_certificate: bool
    extractable: bool | None

    @property
    def spec(self) -> str:
        if self.key_type is KeyType.EC:
            return f"ec-p{self.bits}"
        return f"rsa-{self.bits}"


def _unwrap_octet_string(point: bytes) -> bytes:
    """CKA_EC_POINT is DER OCTET STRING per the standard; some modules give the raw point."""
    if len(point) > 2 and point[0] == 0x04 and point[1] < 0x80 and point[1] == len(point) - 2:
        return point[2:]
    if len(point) > 3 and point[0] == 0x04 and point[1] == 0x81 and point[2] == len(point) - 3:
        return point[3:]
    return point


def public_key_from_record(record: ObjectRecord) -> PublicKey:
    """Build a cryptography public key from a CKO_PUBLIC_KEY record."""
    if record.key_type == KeyType.RSA and record.modulus and record.public_exponent:
        n = int.from_bytes(record.modulus, "big")
        e = int.from_bytes(record.public_exponent, "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    if record.key_type == KeyType.EC and record.ec_params and record.ec_point:
        curve = _CURVES.get(record.ec_params)
        if curve is None:
            raise WrongState("the key uses an elliptic curve authd does not support")
        return ec.EllipticCurvePublicKey.from_encoded_point(
            curve, _unwrap_octet_string(record.ec_point)
        )
    raise WrongState("the token's public key object lacks its key attributes")


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
