"""Secrets at rest: OTP seeds and security-card codes sealed with AES-256-GCM.

The key-encryption key (KEK) lives in a PKCS#11 token (SoftHSM2 by default, created on first
start) or, where configured, in a key file. Two modes:

- ``data-key`` (default): a random data key is sealed under the KEK once and kept in the store;
  at start the token unseals it and sealing happens in process. One token call per start.
- ``token``: every seal/open is a call into the token; the data never meets a key in process.

``bench/bench_secrets.py`` measures both; see the README for the figures and the choice.
Sealed blobs are ``version || nonce || ciphertext || tag`` and bound to their record by ``aad``.
"""

from __future__ import annotations

import logging
import os
import secrets as pysecrets
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authd.config import Config
from authd.storage import Database, Tx
from devices.errors import BadRequest, Unreachable, WrongState
from drivers.errors import DriverError

log = logging.getLogger(__name__)

VERSION_DATA_KEY = 1
VERSION_TOKEN = 2
_NONCE = 12
_META_DATA_KEY = "data_key"
_AAD_DATA_KEY = b"authd data key v1"


class Kek(Protocol):
    """What a key-encryption key offers (implemented by a token or a key file)."""

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes: ...
    def decrypt(self, blob: bytes, aad: bytes) -> bytes: ...
    def random(self, n: int) -> bytes: ...
    def close(self) -> None: ...


class FileKek:
    """A 32-byte key in a file (mode 0600), created when missing."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        key = path.read_bytes()
        if len(key) != 32:
            raise BadRequest(f"key file {path} must hold exactly 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except InvalidTag:
            raise WrongState(
                "sealed data failed authentication (wrong key file?)") from None

    def random(self, n: int) -> bytes:
        return pysecrets.token_bytes(n)

    def close(self) -> None:
        """A key file holds no session or handle to release."""


class SecretBox:
    """Seal and open secrets for storage; ``random`` uses the token's RNG where there is one."""

    def __init__(self, kek: Kek, mode: str, data_key: bytes | None) -> None:
        self._kek = kek
        self.mode = mode
        self._aead = AESGCM(data_key) if data_key is not None else None

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        if self._aead is not None:
            nonce = os.urandom(_NONCE)
            return bytes([VERSION_DATA_KEY]) + nonce + self._aead.encrypt(nonce, plaintext, aad)
        return bytes([VERSION_TOKEN]) + self._kek.encrypt(plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        if not blob:
            raise WrongState("sealed data is empty")
        version, body = blob[0], bytes(blob[1:])
        if version == VERSION_DATA_KEY:
            if self._aead is None:
                raise WrongState("sealed with a data key, but this node runs in token mode")
            try:
                return self._aead.decrypt(body[:_NONCE], body[_NONCE:], aad)
            except InvalidTag:
                raise WrongState("sealed data failed authentication") from None
        if version == VERSION_TOKEN:
            try:
                return self._kek.decrypt(body, aad)
            except Exception as exc:
                raise WrongState(f"sealed data could not be opened: {exc}") from None
        raise WrongState(f"unknown sealed-data version {version}")

    def random(self, n: int) -> bytes:
        return self._kek.random(n)

    def close(self) -> None:
        self._kek.close()


def _read_or_create_pin(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    pin = pysecrets.token_hex(8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pin + "\n")
    return pin


def prepare_kek_token(config: Config, *, create: bool = True) -> None:
    """Make the key-encryption-key token reachable: for the embedded default (SoftHSM2), its
    token directory is activated and the token created on first start (unless ``create`` is
    false). Other users of the token (the audit trail's signing key) reach it the same way."""
    from drivers.pkcs11.softhsm import MODULE as SOFTHSM_MODULE
    from drivers.pkcs11.softhsm import SoftHsmEnvironment

    k = config.kek
    if k.module != SOFTHSM_MODULE:
        return
    env = SoftHsmEnvironment.from_environment()
    if env is None:
        env = SoftHsmEnvironment(config.data_dir / "softhsm")
        env.activate()
    if create and not env.has_token(k.token_label):
        pin = _read_or_create_pin(_pin_file(config))
        env.init_token(k.token_label, pin, pysecrets.token_hex(8))
        log.info("created key-encryption-key token %r", k.token_label)


def _pin_file(config: Config) -> Path:
    return Path(config.kek.pin_file) if config.kek.pin_file else config.data_dir / "kek.pin"


def kek_token_pin(config: Config) -> str:
    """The PIN of the key-encryption-key token (the token prepared first)."""
    prepare_kek_token(config)
    pin_file = _pin_file(config)
    if not pin_file.exists():
        raise Unreachable(f"PIN file for the key-encryption-key token is missing: {pin_file}")
    return pin_file.read_text().strip()


def _token_kek(config: Config) -> Kek:
    from drivers.kek_token import TokenKek

    k = config.kek
    pin = kek_token_pin(config)
    try:
        return TokenKek(k.module, k.token_label, k.key_label, pin)
    except DriverError as exc:
        raise Unreachable(f"key-encryption key unavailable: {exc}") from None


def _load_data_key(db: Database, kek: Kek) -> bytes:
    def load(tx: Tx) -> bytes:
        row = tx.one("SELECT value FROM store_meta WHERE name = ?" + tx.for_update,
                     (_META_DATA_KEY,))
        if row is not None:
            return kek.decrypt(bytes(row[0]), _AAD_DATA_KEY)
        data_key = kek.random(32)
        tx.execute("INSERT INTO store_meta (name, value) VALUES (?, ?)",
                   (_META_DATA_KEY, kek.encrypt(data_key, _AAD_DATA_KEY)))
        return data_key

    try:
        return db.run(load)
    except DriverError:
        raise WrongState(
            "the store's data key was sealed under another key-encryption key") from None


def open_secret_box(config: Config, db: Database) -> SecretBox:
    k = config.kek
    if k.mode not in ("data-key", "token"):
        raise BadRequest(f"kek.mode must be 'data-key' or 'token', not {k.mode!r}")
    kek: Kek
    if k.kind == "file":
        kek = FileKek(Path(k.key_file) if k.key_file else config.data_dir / "kek.key")
    elif k.kind == "pkcs11":
        kek = _token_kek(config)
    else:
        raise BadRequest(f"kek.kind must be 'pkcs11' or 'file', not {k.kind!r}")
    data_key = _load_data_key(db, kek) if k.mode == "data-key" else None
    return SecretBox(kek, k.mode, data_key)
