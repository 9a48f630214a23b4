"""The key that signs the audit chain, and the public keys a verifier trusts.

With ``[kek] kind = "pkcs11"`` (the default) the key pair lives on the key-encryption-key
token (ECDSA P-256, created on first use, the private key never leaves the token). With
``kind = "file"`` an Ed25519 key file stands in (mode 0600, created on first use). A signature
names its key by ``key_id``: the first 8 bytes of SHA-256 over the public key (DER), in hex.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

from authd.audit.settings import AuditSettings
from authd.config import Config
from authd.secrets import kek_token_pin, prepare_kek_token
from devices.errors import BadRequest, Unreachable, WrongState
from drivers.errors import DriverError


def key_id_of(public_der: bytes) -> str:
    return hashlib.sha256(public_der).digest()[:8].hex()


class Signer(Protocol):
    """Signs 32-byte digests (block hashes)."""

    key_id: str
    public_key: bytes  # SubjectPublicKeyInfo, DER

    def sign(self, digest: bytes) -> bytes: ...
    def close(self) -> None: ...


class TokenSigner:
    def __init__(self, config: Config, settings: AuditSettings) -> None:
        from drivers.token_signer import TokenSigningKey

        k = config.kek
        prepare_kek_token(config, create=False)  # the key-encryption key's owner creates it
        pin = kek_token_pin(config)
        try:
            self._key = TokenSigningKey(k.module, k.token_label, settings.signing_key_label, pin)
        except DriverError as exc:
            raise Unreachable(f"audit signing key unavailable: {exc}") from None
        self.public_key = self._key.public_key
        self.key_id = key_id_of(self.public_key)

    def sign(self, digest: bytes) -> bytes:
        try:
            return self._key.sign(digest)
        except DriverError as exc:
            raise Unreachable(f"audit signing failed: {exc}") from None

    def close(self) -> None:
        self._key.close()


class FileSigner:
    """An Ed25519 private key in a PEM file (for ``[kek] kind = "file"``)."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise BadRequest(f"audit signing key file {path} is not a PEM private key") \
                from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise BadRequest(f"audit signing key file {path} must hold an Ed25519 key")
        self._key = key
        self.public_key = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = key_id_of(self.public_key)

    def sign(self, digest: bytes) -> bytes:
        return self._key.sign(digest)

    def close(self) -> None:
        """A key file holds no session to release."""


def open_signer(config: Config, settings: AuditSettings) -> Signer:
    if config.kek.kind == "pkcs11":
        return TokenSigner(config, settings)
    if config.kek.kind == "file":
        return FileSigner(settings.signing_key_path(config))
    raise BadRequest(f"kek.kind must be 'pkcs11' or 'file', not {config.kek.kind!r}")


class KeyRing:
    """Public keys a verifier trusts, by key id."""

    def __init__(self, public_keys: list[bytes], source: str) -> None:
        self.source = source
        self._keys: dict[str, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey] = {}
        self._ders: dict[str, bytes] = {}
        for der in public_keys:
            key = serialization.load_der_public_key(der)
            if not isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
                raise BadRequest("an audit public key must be an EC or Ed25519 key")
            self._keys[key_id_of(der)] = key
            self._ders[key_id_of(der)] = der

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def public_keys(self) -> list[tuple[str, bytes]]:
        """(key id, SubjectPublicKeyInfo DER) of every trusted key."""
        return sorted(self._ders.items())

    def ders(self) -> list[bytes]:
        return [der for _, der in self.public_keys()]

    def knows(self, key_id: str) -> bool:
        return key_id in self._keys

    def verify(self, key_id: str, digest: bytes, signature: bytes) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            else:
                key.verify(signature, digest)
        except InvalidSignature:
            return False
        return True


def read_public_key_file(path: Path) -> list[bytes]:
    """The public keys in a file (PEM blocks, as ``authd audit public-key`` prints them, or
    one DER key), as DER."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read public key {path}: {exc.strerror or exc}") from None
    marker = b"-----BEGIN PUBLIC KEY-----"
    try:
        if marker in raw:
            keys = [serialization.load_pem_public_key(marker + block)
                    for block in raw.split(marker)[1:]]
        else:
            keys = [serialization.load_der_public_key(raw)]
    except (ValueError, TypeError):
        raise BadRequest(f"{path} is not a public key (PEM or DER)") from None
    return [k.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo) for k in keys]


def pem_of(public_der: bytes) -> str:
    key = serialization.load_der_public_key(public_der)
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def configured_public_keys(config: Config, settings: AuditSettings) -> KeyRing:
    """The public keys of this configuration's signing key, read without the PIN."""
    if config.kek.kind == "file":
        path = settings.signing_key_path(config)
        if not path.exists():
            raise WrongState(f"no audit signing key file {path}")
        return KeyRing([FileSigner(path).public_key], f"key file {path}")
    from drivers.token_signer import read_public_keys

    prepare_kek_token(config, create=False)
    try:
        keys = read_public_keys(config.kek.module, config.kek.token_label,
                                settings.signing_key_label)
    except DriverError as exc:
        raise Unreachable(f"cannot read the audit public key from the token: {exc}") from None
    if not keys:
        raise WrongState(
            f"token {config.kek.token_label!r} holds no audit key {settings.signing_key_label!r}")
    return KeyRing(keys, f"token {config.kek.token_label!r}")
