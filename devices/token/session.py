"""The small session interface a token driver provides (implemented in drivers.pkcs11).

Values are PKCS#11's own numbers (CKO_*, CKK_*, CKM_*), so a driver for any module
maps them one to one; this package never imports a PKCS#11 library.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum, unique
from typing import Protocol


@unique
class ObjectClass(IntEnum):
    CERTIFICATE = 0x1
    PUBLIC_KEY = 0x2
    PRIVATE_KEY = 0x3


@unique
class KeyType(IntEnum):
    RSA = 0x0
    EC = 0x3


@unique
class Mech(IntEnum):
    RSA_PKCS_KEY_PAIR_GEN = 0x0000
    RSA_PKCS = 0x0001
    RSA_PKCS_PSS = 0x000D
    SHA256_RSA_PKCS = 0x0040
    SHA256_RSA_PKCS_PSS = 0x0043
    SHA256 = 0x0250
    EC_KEY_PAIR_GEN = 0x1040
    ECDSA = 0x1041
    ECDSA_SHA256 = 0x1044


CKG_MGF1_SHA256 = 0x2

PssParams = tuple[int, int, int]  # (hash CKM, CKG_MGF1_*, salt length)


class ObjectRecord(Protocol):
    """One object as the driver read it (only the public attributes)."""

    @property
    def object_class(self) -> int: ...
    @property
    def key_id(self) -> bytes: ...
    @property
    def label(self) -> str: ...
    @property
    def key_type(self) -> int | None: ...
    @property
    def modulus(self) -> bytes | None: ...
    @property
    def public_exponent(self) -> bytes | None: ...
    @property
    def ec_params(self) -> bytes | None: ...
    @property
    def ec_point(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def sensitive(self) -> bool | None: ...
    @property
    def extractable(self) -> bool | None: ...


class TokenSession(Protocol):
    """A logged-in (or public) session on one token."""

    @property
    def token_label(self) -> str: ...

    def mechanisms(self) -> frozenset[int]:
        """CKM_* values the token supports."""
        ...

    def generate_key_pair(
        self, key_type: int, key_id: bytes, label: str, *, rsa_bits: int = 0, ec_params: bytes = b""
    ) -> None:
        """Generate a non-extractable, sensitive key pair stored on the token."""
        ...

    def find_objects(
        self, object_class: int | None = None, key_id: bytes | None = None
    ) -> Sequence[ObjectRecord]: ...

    def sign(
        self, key_id: bytes, mechanism: int, data: bytes, pss: PssParams | None = None
    ) -> bytes:
        """Sign with the private key whose CKA_ID is key_id (raw mechanism output)."""
        ...

    def sign_many(
        self,
        key_id: bytes,
        mechanism: int,
        payloads: Sequence[bytes],
        pss: PssParams | None,
        out: list[bytes],
    ) -> None:
        """Sign each payload with the same key and mechanism, in order (one session for all),
        appending each signature to ``out`` as it is made: on an error, ``out`` holds the
        signatures made before it."""
        ...

    def create_certificate(
        self, key_id: bytes, label: str, value: bytes, subject: bytes, issuer: bytes, serial: bytes
    ) -> None:
        """Store an X.509 certificate object (CKA_ID = key_id)."""
        ...

    def destroy_objects(self, key_id: bytes, object_class: int | None = None) -> int:
        """Destroy the objects with this CKA_ID (of one class, or all); returns how many."""
        ...
