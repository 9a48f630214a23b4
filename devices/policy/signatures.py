"""Signatures by a customer's token or smartcard over a transfer order.

The key is the one registered for the customer (its SubjectPublicKeyInfo, or a certificate
holding it); the signed data is ``Order.signing_bytes()``.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devices.errors import BadRequest
from devices.token.keys import PublicKey
from devices.token.session import KeyType
from devices.token.signing import SignAlgorithm, default_algorithm, verify


def load_public_key(blob: bytes) -> PublicKey:
    """A public key from a DER SubjectPublicKeyInfo, or a PEM or DER X.509 certificate."""
    key: object
    try:
        if blob.lstrip().startswith(b"-----BEGIN CERTIFICATE"):
            key = x509.load_pem_x509_certificate(blob).public_key()
        elif blob.lstrip().startswith(b"-----BEGIN PUBLIC KEY"):
            key = serialization.load_pem_public_key(blob)
        else:
            try:
                key = serialization.load_der_public_key(blob)
            except ValueError:
                key = x509.load_der_x509_certificate(blob).public_key()
    except ValueError:
        raise BadRequest("the public key must be a DER or PEM SubjectPublicKeyInfo or X.509 "
                         "certificate", field="public_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise BadRequest("the key must be an EC or RSA key", field="public_key")
    return key


def spki(blob: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of ``blob`` (a key or a certificate)."""
    return load_public_key(blob).public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


def signature_valid(public_key_der: bytes, data: bytes, signature: bytes,
                    algorithm: SignAlgorithm | None = None) -> bool:
    """Whether ``signature`` over ``data`` verifies with the registered key (SHA-256:
    ECDSA with a DER signature, RSA PKCS#1 v1.5 or PSS)."""
    key = load_public_key(public_key_der)
    key_type = KeyType.EC if isinstance(key, ec.EllipticCurvePublicKey) else KeyType.RSA
    algorithm = algorithm or default_algorithm(key_type)
    if algorithm.key_type is not key_type:
        return False
    try:
        return verify(key, algorithm, signature, data=data)
    except (BadRequest, ValueError):
        return False
