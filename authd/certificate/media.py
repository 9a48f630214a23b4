"""Putting a new key and its certificate on the customer's medium (step 5 of issuance).

Each target generates the key where it will live, makes a PKCS#10 request signed by that key,
hands the request to ``enroll`` (the CA) and stores the certificate next to the key:

- token: a key pair generated on the HSM token (not extractable), the CSR signed by the
  token, the certificate imported with the key's CKA_ID (authd/token's API);
- smartcard: a key pair generated in the PIV signature slot, the CSR signed by the card with
  the customer's PIN, the certificate written to the slot's container (authd/smartcard);
- disk / removable disk: a key generated in memory, written only encrypted under the
  certificate password as ``signPri.key`` beside ``signCert.der`` (NPKI layout).

If anything fails after the key exists, the new key is removed again where the medium allows
(token, disk); a certificate the CA issued but that could not be stored is revoked by the
caller (see service.py), so no half-issued certificate stays usable.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authd.context import Caller
from devices.certificate import npki
from devices.errors import BadRequest, NoSuchObject, Unreachable
from devices.token import KeySpec
from devices.token.csr import TokenEcKey, TokenRsaKey, build_csr
from devices.token.signing import SignAlgorithm

if TYPE_CHECKING:
    from authd.smartcard.service import SmartcardService
    from authd.token.service import TokenService

Enroll = Callable[[bytes], bytes]  # CSR (DER) -> certificate (DER)
CSR_SUBJECT = "CN=authd certificate request"  # the CA certifies the RA's subject, not this


@dataclass(frozen=True)
class Stored:
    certificate: bytes  # DER
    location: str  # token serial, card id, or the certificate's directory
    key_ref: str = ""  # token: the key id (hex)


@dataclass(frozen=True)
class TokenTarget:
    session: str  # a live token login handle of this caller (the customer typed the PIN)


@dataclass(frozen=True)
class CardTarget:
    reader: str
    pin: str  # the card's PIN: to the card only, never stored or logged

    def __repr__(self) -> str:
        return f"CardTarget({self.reader!r}, pin=***)"


@dataclass(frozen=True)
class DiskTarget:
    root: str  # one of [certificate] disk_roots
    password: str  # the certificate password: encrypts the key file, never stored
    removable: bool = False

    def __repr__(self) -> str:
        return f"DiskTarget({self.root!r}, removable={self.removable})"


Target = TokenTarget | CardTarget | DiskTarget


def on_token(tokens: TokenService, caller: Caller, target: TokenTarget, spec: KeySpec,
             enroll: Enroll, retire_serial: int | None = None) -> Stored:
    """``retire_serial``: a renewal removes the old certificate's key pair and certificate
    once the new ones are stored (the CA has revoked the old certificate as superseded)."""
    from authd.token.errors import token_errors

    login = tokens.login_for(caller, target.session)
    device = tokens.device(login)
    with token_errors():
        key = device.generate_key(spec, "certificate", None)
    try:
        with token_errors():
            csr = device.create_csr(key.key_id, CSR_SUBJECT)
        der = enroll(csr)
        with token_errors():
            device.import_certificate(der, label="certificate", replace=False)
    except BaseException:
        with token_errors():
            device.delete(key.key_id)
        raise
    finally:
        login.certificates.clear()
    if retire_serial is not None:
        with token_errors():
            for old in device.list_certificates():
                if old.serial == retire_serial and old.key_id != key.key_id:
                    device.delete(old.key_id)
        login.certificates.clear()
    return Stored(der, login.serial, key.key_id.hex())


def on_card(cards: SmartcardService, target: CardTarget, spec: KeySpec,
            enroll: Enroll) -> Coroutine[Any, Any, Stored]:
    """The work, run on the reader's own thread by the smartcard service (awaited on the
    daemon's event loop)."""
    from devices.smartcard.errors import InvalidPinError
    from devices.smartcard.piv import KeyType, PivSession, Slot

    key_type = KeyType.ECCP256 if spec is KeySpec.EC_P256 else KeyType.RSA2048
    management_key = cards.settings.management_key

    def work(piv: PivSession) -> Stored:
        card_id = "card:" + piv.read_chuid().guid.hex()
        piv.authenticate(management_key)
        public = piv.generate_key(Slot.SIGNATURE, key_type)

        def sign(_algorithm: SignAlgorithm, digest: bytes) -> bytes:
            try:
                piv.verify_pin(target.pin)
            except InvalidPinError as exc:
                raise BadRequest(f"wrong card PIN ({exc.attempts_remaining} attempt(s) left)",
                                 field="pin", reason="WRONG_PIN") from None
            return piv.sign_digest(Slot.SIGNATURE, key_type, digest)

        key: TokenEcKey | TokenRsaKey
        if isinstance(public, ec.EllipticCurvePublicKey):
            key = TokenEcKey(public, sign)
        else:
            assert isinstance(public, rsa.RSAPublicKey)
            key = TokenRsaKey(public, sign)
        csr = build_csr(key, x509.Name.from_rfc4514_string(CSR_SUBJECT))
        der = enroll(csr.public_bytes(serialization.Encoding.DER))
        piv.authenticate(management_key)
        piv.put_certificate(Slot.SIGNATURE, x509.load_der_x509_certificate(der))
        return Stored(der, card_id)

    return cards.with_piv(target.reader, work)


def disk_root(roots: tuple[Path, ...], name: str) -> Path:
    """``name`` must be one of the configured roots (never a path the caller invents)."""
    for root in roots:
        if str(root) == name or root.name == name:
            if not root.is_dir():
                raise Unreachable(f"the disk {name!r} is not mounted", reason="DISK_ABSENT")
            return root
    raise NoSuchObject(f"no disk named {name!r} is configured ([certificate] disk_roots)",
                       reason="UNKNOWN_DISK")


def on_disk(roots: tuple[Path, ...], ca_name: str, target: DiskTarget, spec: KeySpec,
            iterations: int, enroll: Enroll) -> Stored:
    root = disk_root(roots, target.root)
    npki.check_password(target.password)
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.SECP256R1()) if spec is KeySpec.EC_P256
        else rsa.generate_private_key(65537, 2048))
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name.from_rfc4514_string(CSR_SUBJECT))
           .sign(private, hashes.SHA256()))
    key_file = npki.encrypt_private_key(private, target.password, iterations)
    der = enroll(csr.public_bytes(serialization.Encoding.DER))
    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    folder = root.joinpath(*npki.user_directory(ca_name, subject))
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(folder / npki.CERT_FILE, der, 0o644)
        _write(folder / npki.KEY_FILE, key_file, 0o600)
    except OSError as exc:
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        raise Unreachable(f"cannot write the certificate to the disk: {exc.strerror or exc}",
                          reason="DISK_WRITE_FAILED") from None
    return Stored(der, str(folder))


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
