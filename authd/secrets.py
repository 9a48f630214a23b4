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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authd.config import Config
from authd.files import create_private, private_dir, read_secret
from authd.kek.keys import (
    ACTIVE,
    OPEN_STATES,
    RETIRED,
    KeyRow,
    being_destroyed,
    current_id,
    data_key_aad,
    insert_key,
    read_keys,
)
from authd.storage import Database, Tx
from devices.errors import BadRequest, Unreachable, WrongState
from drivers.errors import DeviceAbsent, DriverError

log = logging.getLogger(__name__)

VERSION_DATA_KEY = 1  # data key of key 1, before key ids: 1 || nonce || ciphertext || tag
VERSION_TOKEN = 2  # key 1 in the token, before key ids: 2 || nonce || ciphertext || tag
VERSION_DATA_KEY_ID = 3  # 3 || key id (4 bytes) || nonce || ciphertext || tag
VERSION_TOKEN_ID = 4  # 4 || key id || nonce || ciphertext || tag (computed in the token)
_KEY_ID = 4
_NONCE = 12
_META_DATA_KEY = "data_key"
_META_SEALED = "kek_sealed"  # token mode: the store holds data sealed under the token


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


@dataclass
class OpenKey:
    """A key-encryption key this node can use, and (data-key mode) its data key."""

    id: int
    kek: Kek
    aead: AESGCM | None


def sealed_key_id(blob: bytes) -> int:
    """Which key-encryption key sealed ``blob`` (values from before key ids: key 1)."""
    if not blob:
        raise WrongState("sealed data is empty")
    if blob[0] in (VERSION_DATA_KEY, VERSION_TOKEN):
        return 1
    if blob[0] in (VERSION_DATA_KEY_ID, VERSION_TOKEN_ID) and len(blob) > 1 + _KEY_ID:
        return int.from_bytes(blob[1:1 + _KEY_ID], "big")
    raise WrongState(f"unknown sealed-data version {blob[0]}")


class KeySource(Protocol):
    """Where a box learns of keys added or destroyed by a rotation (authd.kek)."""

    def load(self, known: dict[int, OpenKey]) -> tuple[dict[int, OpenKey], int]: ...
    def close(self) -> None: ...


class SecretBox:
    """Seal and open secrets for storage; ``random`` uses the token's RNG where there is one.

    A sealed value names the key it was sealed under, so a box opens values of every key it
    holds; new seals go under the current key. With a ``source`` (a store's kek_keys), the box
    looks again at most every ``refresh_seconds`` before it seals, and at once when it meets a
    value of a key it does not hold: a rotation on another node is seen within that time."""

    def __init__(self, mode: str, keys: dict[int, OpenKey], current: int,
                 source: KeySource | None = None, refresh_seconds: float = 2.0) -> None:
        self.mode = mode
        self._keys = dict(keys)
        self._current = current
        self._source = source
        self._refresh = refresh_seconds
        self._loaded = time.monotonic()
        self._lock = threading.Lock()
        self._warned = ""

    @property
    def current_key(self) -> int:
        if self._source is not None and time.monotonic() - self._loaded >= self._refresh:
            self.refresh(wait=False)
        return self._current

    def key_ids(self) -> list[int]:
        return sorted(self._keys)

    def refresh(self, *, wait: bool = True) -> None:
        """Read the store's keys again (open new ones, close destroyed ones). A failure keeps
        the keys this box holds (and is logged once)."""
        if self._source is None:
            return
        if not self._lock.acquire(blocking=wait):
            return  # another thread is reading them now
        try:
            keys, current = self._source.load(self._keys)
            for key_id, key in self._keys.items():
                if key_id not in keys and all(k.kek is not key.kek for k in keys.values()):
                    key.kek.close()
            self._keys, self._current = keys, current
            self._warned = ""
        except Exception as exc:
            message = f"reading the key-encryption keys failed: {exc}"
            if message != self._warned:
                log.warning("%s; sealing goes on under key %d", message, self._current)
                self._warned = message
        finally:
            self._loaded = time.monotonic()
            self._lock.release()

    def _key(self, key_id: int) -> OpenKey:
        key = self._keys.get(key_id)
        if key is None:
            self.refresh()
            key = self._keys.get(key_id)
        if key is None:
            raise WrongState(f"sealed under key-encryption key {key_id}, which this node does "
                             "not hold (destroyed, or not on its token)")
        return key

    def seal(self, plaintext: bytes, aad: bytes, *, key_id: int | None = None) -> bytes:
        key = self._key(self.current_key if key_id is None else key_id)
        head = key.id.to_bytes(_KEY_ID, "big")
        if key.aead is not None:
            nonce = os.urandom(_NONCE)
            return bytes([VERSION_DATA_KEY_ID]) + head + nonce + key.aead.encrypt(
                nonce, plaintext, aad)
        return bytes([VERSION_TOKEN_ID]) + head + key.kek.encrypt(plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        key = self._key(sealed_key_id(blob))
        version = blob[0]
        body = bytes(blob[1:]) if version in (VERSION_DATA_KEY, VERSION_TOKEN) \
            else bytes(blob[1 + _KEY_ID:])
        if version in (VERSION_DATA_KEY, VERSION_DATA_KEY_ID):
            if key.aead is None:
                raise WrongState("sealed with a data key, but this node runs in token mode")
            try:
                return key.aead.decrypt(body[:_NONCE], body[_NONCE:], aad)
            except InvalidTag:
                raise WrongState("sealed data failed authentication") from None
        try:
            return key.kek.decrypt(body, aad)
        except Exception as exc:
            raise WrongState(f"sealed data could not be opened: {exc}") from None

    def reseal(self, blob: bytes, aad: bytes, key_id: int) -> bytes | None:
        """``blob`` sealed again under key ``key_id``; None if it is sealed under it already."""
        if sealed_key_id(blob) == key_id:
            return None
        return self.seal(self.open(blob, aad), aad, key_id=key_id)

    def random(self, n: int) -> bytes:
        return self._key(self._current).kek.random(n)

    def close(self) -> None:
        closed: list[Kek] = []
        for key in self._keys.values():
            if all(key.kek is not k for k in closed):
                key.kek.close()
                closed.append(key.kek)
        if self._source is not None:
            self._source.close()


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


def _token_kek(config: Config, label: str, *, sealed: bool, pin: str | None = None) -> Kek:
    """The token's key ``label``, created only for a new store (``sealed`` false)."""
    from drivers.kek_token import KeyAbsent, TokenKek

    k = config.kek
    where = prepare_kek_token(config, create=not sealed)
    try:
        return TokenKek(k.module, k.token_label, label,
                        kek_token_pin(config) if pin is None else pin, create_key=not sealed)
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
        "SELECT (SELECT COUNT(*) FROM store_meta WHERE name IN (?, ?))"
        " + (SELECT COUNT(*) FROM kek_keys)", (_META_DATA_KEY, _META_SEALED)),
        write=False)
    return bool(row and row[0])


def _load_data_key(db: Database, kek: Kek) -> bytes:
    """Key 1's data key (kept in store_meta since before key ids), made for a new store."""
    def load(tx: Tx) -> bytes:
        row = tx.one("SELECT value FROM store_meta WHERE name = ?" + tx.for_update,
                     (_META_DATA_KEY,))
        if row is not None:
            return kek.decrypt(bytes(row[0]), data_key_aad(1))
        data_key = kek.random(32)
        tx.execute("INSERT INTO store_meta (name, value) VALUES (?, ?)",
                   (_META_DATA_KEY, kek.encrypt(data_key, data_key_aad(1))))
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


def _first_key(config: Config, db: Database, kek: Kek) -> None:
    """Key 1 of a store from before key ids, or of a new one: recorded in kek_keys."""
    k = config.kek
    data_key = None
    if k.mode == "data-key":
        _load_data_key(db, kek)
        row = db.run(lambda tx: tx.one("SELECT value FROM store_meta WHERE name = ?",
                                       (_META_DATA_KEY,)), write=False)
        data_key = bytes(row[0]) if row else None
    else:
        _mark_sealed(db)
    db.run(lambda tx: insert_key(tx, 1, k.key_label, ACTIVE, data_key, time.time()))


def _read_keys(tx: Tx) -> tuple[list[KeyRow], set[int]]:
    return read_keys(tx), being_destroyed(tx)


def _open_keys(rows: list[KeyRow], known: dict[int, OpenKey], opener: Callable[[str], Kek],
               mode: str, destroying: set[int],
               states: tuple[str, ...] = OPEN_STATES) -> dict[int, OpenKey]:
    keys: dict[int, OpenKey] = {}
    for row in rows:
        if row.state not in states:
            continue
        if row.id in known:
            keys[row.id] = known[row.id]
            continue
        try:
            kek = opener(row.key_label)
        except Unreachable:
            if row.id in destroying:  # gone from the token already: nothing is under it
                continue
            raise
        aead = None
        if mode == "data-key":
            if row.sealed_data_key is None:
                kek.close()
                raise WrongState(f"key-encryption key {row.id} has no data key in the store")
            try:
                aead = AESGCM(kek.decrypt(row.sealed_data_key, data_key_aad(row.id)))
            except (DriverError, WrongState):
                kek.close()
                raise WrongState(f"the data key of key {row.id} was sealed under another "
                                 "key-encryption key") from None
        keys[row.id] = OpenKey(row.id, kek, aead)
    return keys


class _StoreKeys:
    """A box's view of the store's kek_keys, read on a connection of its own (a box is asked
    to seal inside other transactions)."""

    def __init__(self, db: Database, opener: Callable[[str], Kek], mode: str) -> None:
        self._db = db
        self._opener = opener
        self._mode = mode

    def load(self, known: dict[int, OpenKey]) -> tuple[dict[int, OpenKey], int]:
        rows, destroying = self._db.run(_read_keys, write=False)
        return _open_keys(rows, known, self._opener, self._mode, destroying), current_id(rows)

    def close(self) -> None:
        self._db.close()


def key_opener(config: Config, *, sealed: bool = True) -> Callable[[str], Kek]:
    """Opens a key-encryption key by its label (kek_keys.key_label) on the configured token;
    for a key file, the file (it holds one key)."""
    k = config.kek
    if k.kind == "file":
        path = Path(k.key_file) if k.key_file else config.data_dir / "kek.key"
        return lambda label: FileKek(path, create=not sealed)
    if k.kind != "pkcs11":
        raise BadRequest(f"kek.kind must be 'pkcs11' or 'file', not {k.kind!r}")
    pin = kek_token_pin(config) if sealed else None
    return lambda label: _token_kek(config, label, sealed=sealed, pin=pin)


def open_secret_box(config: Config, db: Database) -> SecretBox:
    """The secret box of this store. A new store (nothing sealed yet) gets its key: the
    embedded token or the key file is created when missing; a store that holds sealed data
    needs the keys it was sealed under, and a missing one is an error, never replaced."""
    k = config.kek
    if k.mode not in ("data-key", "token"):
        raise BadRequest(f"kek.mode must be 'data-key' or 'token', not {k.mode!r}")
    if k.kind not in ("file", "pkcs11"):
        raise BadRequest(f"kek.kind must be 'pkcs11' or 'file', not {k.kind!r}")
    sealed = _holds_sealed_data(db)
    rows, destroying = db.run(_read_keys, write=False)
    opened: dict[str, Kek] = {}
    if not rows:
        first = key_opener(config, sealed=sealed)(k.key_label)
        opened[k.key_label] = first
        try:
            _first_key(config, db, first)
            rows, destroying = db.run(_read_keys, write=False)
        except BaseException:
            first.close()
            raise
    opener = key_opener(config)

    def reuse(label: str) -> Kek:
        return opened.pop(label) if label in opened else opener(label)

    try:
        keys = _open_keys(rows, {}, reuse, k.mode, destroying)
    finally:
        for kek in opened.values():
            kek.close()
    source = None
    if k.kind == "pkcs11":
        own = db.sibling()
        own.set_timeout(config.store.timeout_seconds)
        source = _StoreKeys(own, opener, k.mode)
    return SecretBox(k.mode, keys, current_id(rows), source, k.refresh_seconds)


def restore_box(config: Config, rows: list[KeyRow]) -> SecretBox:
    """A box over ``rows`` that also opens retired keys (a restored backup's values), for
    moving them under the current key; it reads no store and watches no rotation."""
    k = config.kek
    keys = _open_keys(rows, {}, key_opener(config), k.mode, set(), (*OPEN_STATES, RETIRED))
    return SecretBox(k.mode, keys, current_id(rows))


def create_token_key(config: Config, label: str) -> Kek:
    """A new key-encryption key ``label`` on the configured token (found if a stopped
    rotation created it already)."""
    from drivers.kek_token import TokenKek

    k = config.kek
    prepare_kek_token(config, create=False)
    try:
        return TokenKek(k.module, k.token_label, label, kek_token_pin(config), create_key=True)
    except DriverError as exc:
        raise Unreachable(f"key-encryption key unavailable: {exc}") from None


def destroy_token_key(config: Config, label: str) -> bool:
    """Destroy the key-encryption key ``label`` on the token; False if it was gone already."""
    from drivers.kek_token import destroy_key

    k = config.kek
    prepare_kek_token(config, create=False)
    try:
        return destroy_key(k.module, k.token_label, label, kek_token_pin(config))
    except DriverError as exc:
        raise Unreachable(f"key-encryption key unavailable: {exc}") from None
