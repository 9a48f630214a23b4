"""A signing key pair held in a PKCS#11 token: ECDSA P-256, the private key never leaves it.

The audit trail signs the head of its hash chain with it (see ``authd/audit``). The key pair is
created on first use with ``CKA_SENSITIVE`` and not ``CKA_EXTRACTABLE``; the public key is a
public token object, so a verifier reads it without the PIN.
"""

from __future__ import annotations

import os
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)

from drivers.errors import DeviceAbsent, DeviceIOError, DriverError
from drivers.kek_token import _MODULE_LOCK
from drivers.pkcs11.login import Login

CURVE = "secp256r1"


def _token(module: str, token_label: str) -> Any:
    try:
        lib = pkcs11.lib(module)
    except Exception as exc:
        raise DeviceAbsent(f"cannot load PKCS#11 module {module}: {exc}") from None
    try:
        return lib.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        raise DeviceAbsent(f"no PKCS#11 token labelled {token_label!r}") from None
    except pkcs11.MultipleTokensReturned:
        raise DeviceIOError(f"several tokens labelled {token_label!r}") from None


def _public_keys(session: Any, key_label: str) -> list[bytes]:
    """SubjectPublicKeyInfo DER of every EC public key labelled ``key_label``."""
    found = session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                                 Attribute.KEY_TYPE: KeyType.EC, Attribute.LABEL: key_label})
    return sorted(encode_ec_public_key(key) for key in found)


def read_public_keys(module: str, token_label: str, key_label: str) -> list[bytes]:
    """The public keys labelled ``key_label`` on the token (no login needed)."""
    token = _token(module, token_label)
    with _MODULE_LOCK:
        try:
            with token.open() as session:
                return _public_keys(session, key_label)
        except pkcs11.PKCS11Error as exc:
            raise DeviceIOError(f"cannot read token {token_label!r}: {type(exc).__name__}") \
                from None


class TokenSigningKey:
    """Sign 32-byte digests with the token's private key (created when missing)."""

    def __init__(self, module: str, token_label: str, key_label: str, pin: str) -> None:
        token = _token(module, token_label)
        with _MODULE_LOCK:
            try:
                # The login is shared with the token's other users in this process (the
                # key-encryption key): closing this key must not log them out.
                self._login = Login(token, pin)
            except pkcs11.PinIncorrect:
                raise DriverError(f"wrong PIN for token {token_label!r}") from None
            except pkcs11.PKCS11Error as exc:
                raise DeviceIOError(
                    f"cannot open token {token_label!r}: {type(exc).__name__}") from None
            try:
                self._session = self._login.open()
                self._key, self.public_key = self._find_or_create(key_label)
            except pkcs11.PKCS11Error as exc:
                self.close()
                raise DeviceIOError(
                    f"cannot prepare the signing key {key_label!r}: {type(exc).__name__}") \
                    from None

    def _find_or_create(self, label: str) -> tuple[Any, bytes]:
        keys = sorted(self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                 Attribute.KEY_TYPE: KeyType.EC,
                                                 Attribute.LABEL: label}),
                      key=lambda k: bytes(k[Attribute.ID]))
        if not keys:
            params = self._session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVE)},
                local=True)
            public, private = params.generate_keypair(
                id=os.urandom(8), label=label, store=True,
                public_template={Attribute.TOKEN: True, Attribute.PRIVATE: False,
                                 Attribute.VERIFY: True},
                private_template={Attribute.TOKEN: True, Attribute.PRIVATE: True,
                                  Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.SIGN: True})
            return private, encode_ec_public_key(public)
        private = keys[0]
        public = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC,
                                       id=bytes(private[Attribute.ID]), label=label)
        return private, encode_ec_public_key(public)

    def sign(self, digest: bytes) -> bytes:
        """A DER-encoded ECDSA signature of ``digest`` (already a SHA-256 value)."""
        with _MODULE_LOCK:
            try:
                raw = self._key.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.PKCS11Error as exc:
                raise DeviceIOError(f"token signing failed: {type(exc).__name__}") from None
        return bytes(encode_ecdsa_signature(bytes(raw)))

    def close(self) -> None:
        with _MODULE_LOCK:
            try:
                if hasattr(self, "_session"):
                    self._session.close()
            except pkcs11.PKCS11Error:
                pass
            self._login.release()
