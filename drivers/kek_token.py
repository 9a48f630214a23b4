"""A key-encryption key held in a PKCS#11 token: AES-256-GCM inside the token, and its RNG."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from drivers.errors import DeviceAbsent, DeviceIOError, DriverError
from drivers.pkcs11.login import Login

NONCE_BYTES = 12
# One lock for every call into a PKCS#11 module from this process (see TokenKek).
_MODULE_LOCK = threading.RLock()


class KeyAbsent(DeviceAbsent):
    """The token is there, the key-encryption key on it is not."""


class TokenKek:
    """AES-GCM with a non-extractable key on a token.

    Calls into the token are serialized: python-pkcs11 initializes the module without telling it
    that several threads may call at once, and SoftHSM2 then corrupts concurrent AES-GCM
    operations (seen as failed authentication tags, and crashes)."""

    def __init__(self, module: str, token_label: str, key_label: str, pin: str,
                 sessions: int = 1, *, create_key: bool = True) -> None:
        try:
            lib = pkcs11.lib(module)
        except Exception as exc:
            raise DeviceAbsent(f"cannot load PKCS#11 module {module}: {exc}") from None
        try:
            self._token = lib.get_token(token_label=token_label)
        except pkcs11.NoSuchToken:
            raise DeviceAbsent(f"no PKCS#11 token labelled {token_label!r}") from None
        except pkcs11.MultipleTokensReturned:
            raise DeviceIOError(f"several tokens labelled {token_label!r}") from None
        self._key_label = key_label
        self._pool: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._sessions: list[Any] = []
        try:
            self._login = Login(self._token, pin)  # shared with the token's other users here
            first = self._login.open()
        except pkcs11.PinIncorrect:
            raise DriverError(f"wrong PIN for the key-encryption-key token {token_label!r}") \
                from None
        except pkcs11.PKCS11Error as exc:
            raise DeviceIOError(f"cannot open token {token_label!r}: {type(exc).__name__}") \
                from None
        self._sessions.append(first)
        try:
            key = self._find_or_create_key(first, token_label, create_key)
        except BaseException:
            self.close()
            raise
        self._pool.put((first, key))
        for _ in range(sessions - 1):
            session = self._login.open()
            self._sessions.append(session)
            self._pool.put((session, session.get_key(label=key_label,
                                                      object_class=ObjectClass.SECRET_KEY)))

    def _find_or_create_key(self, session: Any, token_label: str, create: bool) -> Any:
        try:
            return session.get_key(label=self._key_label, object_class=ObjectClass.SECRET_KEY)
        except pkcs11.NoSuchKey:
            if not create:
                raise KeyAbsent(f"no key labelled {self._key_label!r} on token "
                                f"{token_label!r}") from None
            return session.generate_key(
                KeyType.AES, 256, label=self._key_label, store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                },
            )

    @contextmanager
    def _session(self) -> Iterator[tuple[Any, Any]]:
        item = self._pool.get()
        try:
            with _MODULE_LOCK:
                yield item
        finally:
            self._pool.put(item)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """nonce || ciphertext || tag, computed inside the token."""
        nonce = os.urandom(NONCE_BYTES)  # unique per message; the key stays in the token
        with self._session() as (_, key):
            ct = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM,
                             mechanism_param=pkcs11.GCMParams(nonce, aad, 128))
        return nonce + bytes(ct)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        nonce, ct = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        with self._session() as (_, key):
            try:
                return bytes(key.decrypt(ct, mechanism=Mechanism.AES_GCM,
                                         mechanism_param=pkcs11.GCMParams(nonce, aad, 128)))
            except pkcs11.PKCS11Error:
                raise DriverError("sealed data failed authentication") from None

    def random(self, n: int) -> bytes:
        with self._session() as (session, _):
            try:
                return bytes(session.generate_random(n * 8))
            except pkcs11.PKCS11Error:
                return os.urandom(n)

    def close(self) -> None:
        for session in self._sessions:
            try:
                session.close()
            except pkcs11.PKCS11Error:
                pass
        self._sessions.clear()
        if hasattr(self, "_login"):
            self._login.release()


def destroy_key(module: str, token_label: str, key_label: str, pin: str) -> bool:
    """Destroy the secret key ``key_label`` on the token; False if it is not there (gone
    already). Every key of that label goes: a label names one key-encryption key."""
    try:
        lib = pkcs11.lib(module)
        token = lib.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        raise DeviceAbsent(f"no PKCS#11 token labelled {token_label!r}") from None
    except Exception as exc:
        raise DeviceAbsent(f"cannot reach token {token_label!r}: {exc}") from None
    with _MODULE_LOCK:
        try:
            login = Login(token, pin)
        except pkcs11.PinIncorrect:
            raise DriverError(f"wrong PIN for the key-encryption-key token {token_label!r}") \
                from None
        try:
            session = login.open()
        except BaseException:
            login.release()
            raise
        try:
            found = list(session.get_objects({Attribute.LABEL: key_label,
                                              Attribute.CLASS: ObjectClass.SECRET_KEY}))
            for key in found:
                key.destroy()
            return bool(found)
        except pkcs11.PKCS11Error as exc:
            raise DeviceIOError(f"cannot destroy key {key_label!r}: {type(exc).__name__}") \
                from None
        finally:
            try:
                session.close()
            except pkcs11.PKCS11Error:
                pass
            login.release()
