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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authd.config import Config
from authd.files import create_private, private_dir, read_secret
from authd.storage import Database, Tx
from devices.errors import BadRequest, Unreachable, WrongState
from drivers.errors import DeviceAbsent, DriverError

log = logging.getLogger(__name__)

VERSION_DATA_KEY = 1
VERSION_TOKEN = 2
_NONCE = 12
_META_DATA_KEY = "data_key"
_META_SEALED = "kek_sealed"  # token mode: the store holds data sealed under the token
_AAD_DATA_KEY = b"authd data key v1"


class Kek(Protocol):
    """What a key-encryption key offers (implemented by a token or a key file)."""

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes: ...
    def decrypt(self, blob: bytes, aad: bytes) -> bytes: ...
    def random(self, n: int) -> bytes: ...
    def close(self) -> None: ...


class FileKek:
    """A 32-byte key in a file (mode 0600), created when missing and ``create`` allows it."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        if not path.exists():
            if not create:
                raise Unreachable(f"the key file of the key-encryption key {path} is missing; "
                                  "restore it: the store holds data sealed under it")
            private_dir(path.parent)
            create_private(path, os.urandom(32))
        key = read_secret(path, "key file")
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


@dataclass(frozen=True)
class PinSource:
    """Where the key-encryption-key token's PIN comes from (``[kek] pin_file``, ``pin_env``,
    ``pin_credential``; none of them: ``data_dir/kek.pin``, the embedded default)."""

    kind: Literal["file", "env", "credential"]
    name: str  # the file, the variable or the credential
    default: bool = False  # data_dir/kek.pin: created with the embedded token

    def __str__(self) -> str:
        if self.kind == "env":
            return f"environment variable {self.name}"
        if self.kind == "credential":
            return f"systemd credential {self.name}"
        return f"PIN file {self.name}"


def pin_source(config: Config) -> PinSource:
    k = config.kek
    if k.pin_env:
        return PinSource("env", k.pin_env)
    if k.pin_credential:
        return PinSource("credential", k.pin_credential)
    if k.pin_file:
        return PinSource("file", k.pin_file)
    return PinSource("file", str(config.data_dir / "kek.pin"), default=True)


def _pin_text(raw: bytes, source: PinSource) -> str:
    try:
        pin = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest(f"the {source} does not hold a text PIN") from None
    if not pin:
        raise BadRequest(f"the {source} is empty")
    return pin


def read_pin(source: PinSource) -> str:
    """The PIN from its source; a file must be private (``authd.files.read_secret``)."""
    if source.kind == "env":
        value = os.environ.get(source.name)
        if value is None:
            raise Unreachable(f"the key-encryption-key token's PIN is missing: {source} is "
                              "not set")
        return _pin_text(value.encode(), source)
    if source.kind == "credential":
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise Unreachable(f"the {source} is unavailable: CREDENTIALS_DIRECTORY is not set "
                              "(LoadCredential= in the systemd unit)")
        path = Path(directory) / source.name
        return _pin_text(read_secret(path, "credential file"), source)
    what = "PIN file for the key-encryption-key token"
    return _pin_text(read_secret(Path(source.name), what), source)


def kek_token_pin(config: Config) -> str:
    """The PIN of the key-encryption-key token, from its configured source."""
    return read_pin(pin_source(config))


def _pin_for_new_token(config: Config) -> str:
    source = pin_source(config)
    path = Path(source.name)
    if source.default and not path.exists():
        private_dir(path.parent)
        pin = pysecrets.token_hex(16)
        create_private(path, (pin + "\n").encode())
        return pin
    return read_pin(source)


def prepare_kek_token(config: Config, *, create: bool = True) -> str:
    """Make the key-encryption-key token reachable. For the embedded default (SoftHSM2), its
    token directory is activated and the token created when missing and ``create`` allows it
    (a new store: nothing sealed yet). Returns where the token lives, for messages."""
    from drivers.pkcs11.softhsm import MODULE as SOFTHSM_MODULE
    from drivers.pkcs11.softhsm import SoftHsmEnvironment

    k = config.kek
    if k.module != SOFTHSM_MODULE:
        return f"PKCS#11 module {k.module}"
    env = SoftHsmEnvironment.from_environment()
    if env is None:
        env = SoftHsmEnvironment(config.data_dir / "softhsm")
        env.activate()
    if create and not env.has_token(k.token_label):
        env.init_token(k.token_label, _pin_for_new_token(config), pysecrets.token_hex(16))
        log.info("created key-encryption-key token %r", k.token_label)
    return f"SoftHSM2 token directory {env.token_dir}"


def _token_kek(config: Config, sealed: bool) -> Kek:
    from drivers.kek_token import KeyAbsent, TokenKek

    k = config.kek
    where = prepare_kek_token(config, create=not sealed)
    try:
        return TokenKek(k.module, k.token_label, k.key_label, kek_token_pin(config),
                        create_key=not sealed)
    except KeyAbsent as exc:
        raise Unreachable(f"the key-encryption key is missing: {exc}; restore the token: the "
                          "store holds data sealed under it") from None
    except DeviceAbsent as exc:
        if sealed:
            raise Unreachable(
                f"the key-encryption-key token {k.token_label!r} is missing ({where}); restore "
                "it: the store holds data sealed under it") from None
        raise Unreachable(f"key-encryption key unavailable: {exc}") from None
    except DriverError as exc:
        raise Unreachable(f"key-encryption key unavailable: {exc}") from None


def _holds_sealed_data(db: Database) -> bool:
    """Whether the store holds data sealed under a key-encryption key (so a missing token or
    key file must be restored, not made anew)."""
    row = db.run(lambda tx: tx.one(
        "SELECT COUNT(*) FROM store_meta WHERE name IN (?, ?)", (_META_DATA_KEY, _META_SEALED)),
        write=False)
    return bool(row and row[0])


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


def _mark_sealed(db: Database) -> None:
    """Token mode seals under the token itself: note that the store depends on it."""
    def mark(tx: Tx) -> None:
        if tx.one("SELECT 1 FROM store_meta WHERE name = ?", (_META_SEALED,)) is None:
            tx.execute("INSERT INTO store_meta (name, value) VALUES (?, ?)",
                       (_META_SEALED, b"token"))

    db.run(mark)


def open_secret_box(config: Config, db: Database) -> SecretBox:
    """The secret box of this store. A new store (nothing sealed yet) gets its key: the
    embedded token or the key file is created when missing; a store that holds sealed data
    needs the key it was sealed under, and a missing one is an error, never replaced."""
    k = config.kek
    if k.mode not in ("data-key", "token"):
        raise BadRequest(f"kek.mode must be 'data-key' or 'token', not {k.mode!r}")
    sealed = _holds_sealed_data(db)
    kek: Kek
    if k.kind == "file":
        kek = FileKek(Path(k.key_file) if k.key_file else config.data_dir / "kek.key",
                      create=not sealed)
    elif k.kind == "pkcs11":
        kek = _token_kek(config, sealed)
    else:
        raise BadRequest(f"kek.kind must be 'pkcs11' or 'file', not {k.kind!r}")
    try:
        data_key = _load_data_key(db, kek) if k.mode == "data-key" else None
        if k.mode == "token":
            _mark_sealed(db)
    except BaseException:
        kek.close()
        raise
    return SecretBox(kek, k.mode, data_key)
