"""Certificate signing requests built by `cryptography`, signed by the token.

cryptography's CSR builder signs through the private-key interface; the adapters
below implement that interface by sending the hash to the token (see signing.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NoReturn, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from devices.errors import BadRequest
from devices.token.signing import SignAlgorithm

# sign(algorithm, digest) -> signature as X.509 expects it (DER for ECDSA)
DigestSigner = Callable[[SignAlgorithm, bytes], bytes]


def _sha256(data: bytes, algorithm: Any) -> bytes:
    if not isinstance(algorithm, hashes.SHA256):
        raise BadRequest("only SHA-256 signatures are supported")
    return hashlib.sha256(data).digest()


def _no_private(*_: object) -> NoReturn:
    raise TypeError("the private key stays on the token")


class _OnToken:
    """What every token-resident key answers: it cannot be exported, and copying it
    copies the handle, not the key."""

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        _no_private()

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class TokenEcKey(_OnToken, ec.EllipticCurvePrivateKey):
    """An EC private key that lives on the token."""

    def __init__(self, public: ec.EllipticCurvePublicKey, signer: DigestSigner) -> None:
        self._public = public
        self._signer = signer

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        algorithm = getattr(signature_algorithm, "algorithm", None)
        return self._signer(SignAlgorithm.ECDSA_SHA256, _sha256(bytes(data), algorithm))

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _no_private()

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _no_private()


class TokenRsaKey(_OnToken, rsa.RSAPrivateKey):
    """An RSA private key that lives on the token."""

    def __init__(self, public: rsa.RSAPublicKey, signer: DigestSigner) -> None:
        self._public = public
        self._signer = signer

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        padding: padding.AsymmetricPadding,
        algorithm: Any,
    ) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import padding as pad

        digest = _sha256(bytes(data), algorithm)
        if isinstance(padding, pad.PKCS1v15):
            return self._signer(SignAlgorithm.RSA_PKCS1V15_SHA256, digest)
        if isinstance(padding, pad.PSS):
            return self._signer(SignAlgorithm.RSA_PSS_SHA256, digest)
        raise BadRequest("unsupported RSA padding")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        _no_private()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _no_private()


def parse_subject(subject: str) -> x509.Name:
    """An RFC 4514 subject such as ``CN=Hong Gildong,OU=personal,O=yessign,C=KR``."""
    if not subject.strip():
        raise BadRequest("the subject is empty")
    if len(subject) > 1024:
        raise BadRequest("the subject is longer than 1024 characters")
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        raise BadRequest("the subject is not a valid RFC 4514 name") from None
    if len(name) == 0:
        raise BadRequest("the subject is empty")
    return name


def build_csr(
    key: TokenEcKey | TokenRsaKey,
    subject: x509.Name,
    *,
    pss: bool = False,
    dns_names: tuple[str, ...] = (),
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if isinstance(key, TokenRsaKey) and pss:
        return builder.sign(
            key,
            hashes.SHA256(),
            rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH),
        )
    return builder.sign(key, hashes.SHA256())
