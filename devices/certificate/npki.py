"""The disk layout Korean banking software expects for a certificate (NPKI).

A customer's certificate on a hard disk or USB stick is a directory
``NPKI/<CA>/USER/<subject DN>/`` holding ``signCert.der`` (the certificate, DER) and
``signPri.key``: the private key as a PKCS#8 EncryptedPrivateKeyInfo, encrypted under the
certificate password with PBES2 (PKCS #5 v2.1, RFC 8018): PBKDF2 and the Korean block cipher
SEED in CBC mode (KISA, RFC 4269; OID 1.2.410.200004.1.4). Reading also accepts PBKDF2 with
HMAC-SHA1 (the PRF's default), which older toolkits write.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import SEED
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from devices.certificate import der
from devices.errors import BadRequest, NotPermitted

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
HMAC_SHA1 = "1.2.840.113549.2.7"
HMAC_SHA256 = "1.2.840.113549.2.9"
SEED_CBC = "1.2.410.200004.1.4"
CERT_FILE = "signCert.der"
KEY_FILE = "signPri.key"
DEFAULT_ITERATIONS = 2048
MIN_PASSWORD = 10  # the certificate password rule of the banking toolkits (10+ characters)
_PRF = {HMAC_SHA1: hashes.SHA1, HMAC_SHA256: hashes.SHA256}


def check_password(password: str) -> str:
    """A certificate password: at least 10 characters with letters, digits and a symbol (the
    rule the toolkits enforce). The message never repeats it."""
    if len(password) < MIN_PASSWORD or len(password) > 56:
        raise BadRequest(f"the certificate password must be {MIN_PASSWORD}..56 characters",
                         field="password")
    kinds = (any(c.isalpha() for c in password), any(c.isdigit() for c in password),
             any(not c.isalnum() for c in password))
    if not all(kinds):
        raise BadRequest("the certificate password needs letters, digits and a symbol",
                         field="password")
    return password


def _key(password: str, salt: bytes, iterations: int, prf: str) -> bytes:
    kdf = PBKDF2HMAC(algorithm=_PRF[prf](), length=16, salt=salt, iterations=iterations)
    return kdf.derive(password.encode("utf-8"))


def encrypt_private_key(key: PrivateKeyTypes, password: str,
                        iterations: int = DEFAULT_ITERATIONS) -> bytes:
    """``signPri.key``: the key as PKCS#8, encrypted with PBES2(PBKDF2-HMAC-SHA256, SEED-CBC)."""
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(8), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(SEED(_key(password, salt, iterations, HMAC_SHA256)), modes.CBC(iv)).encryptor()
    body = enc.update(padded) + enc.finalize()
    kdf_params = der.sequence(der.octets(salt), der.integer(iterations),
                              der.sequence(der.oid(HMAC_SHA256), der.null()))
    algorithm = der.sequence(
        der.oid(PBES2),
        der.sequence(der.sequence(der.oid(PBKDF2), kdf_params),
                     der.sequence(der.oid(SEED_CBC), der.octets(iv))))
    return der.sequence(algorithm, der.octets(body))


@dataclass(frozen=True)
class KeyFileParams:
    salt: bytes
    iterations: int
    prf: str
    iv: bytes
    body: bytes


def parse_key_file(data: bytes) -> KeyFileParams:
    try:
        top = der.read_one(data).children()
        algorithm, body = top[0].children(), top[1].as_octets()
        if algorithm[0].as_oid() != PBES2:
            raise ValueError("not PBES2")
        kdf, scheme = algorithm[1].children()
        kdf_oid, kdf_params = kdf.children()
        if kdf_oid.as_oid() != PBKDF2:
            raise ValueError("not PBKDF2")
        params = kdf_params.children()
        salt, iterations = params[0].as_octets(), params[1].as_int()
        prf = HMAC_SHA1
        for extra in params[2:]:
            if extra.tag == der.SEQUENCE:
                prf = extra.children()[0].as_oid()
        scheme_oid, iv = scheme.children()
        if scheme_oid.as_oid() != SEED_CBC or prf not in _PRF:
            raise ValueError("not SEED-CBC with HMAC-SHA1/SHA-256")
        if not 1 <= iterations <= 10_000_000 or len(iv.as_octets()) != 16:
            raise ValueError("bad parameters")
        return KeyFileParams(salt, iterations, prf, iv.as_octets(), body)
    except (ValueError, IndexError):
        raise BadRequest("the key file is not a PBES2/SEED-CBC PKCS#8 key (signPri.key)",
                         field="key_file") from None


def decrypt_private_key(data: bytes, password: str) -> PrivateKeyTypes:
    """The key of ``signPri.key``; a wrong password is NotPermitted (nothing else is said)."""
    p = parse_key_file(data)
    dec = Cipher(SEED(_key(password, p.salt, p.iterations, p.prf)), modes.CBC(p.iv)).decryptor()
    try:
        padded = dec.update(p.body) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        return serialization.load_der_private_key(plain, password=None)
    except ValueError:
        raise NotPermitted("wrong certificate password", reason="WRONG_CERTIFICATE_PASSWORD") \
            from None


_UNSAFE = re.compile(r"[\x00-\x1f/\\]")


def user_directory(ca_name: str, subject_rfc4514: str) -> tuple[str, ...]:
    """The path parts of the certificate's directory below the disk's root:
    ``("NPKI", ca, "USER", subject DN in lower case)`` as the toolkits name it; a name that
    could leave the directory is refused."""
    parts = (ca_name, subject_rfc4514.lower())
    for part in parts:
        if not part or part in (".", "..") or _UNSAFE.search(part) or len(part) > 240:
            raise BadRequest("the CA name or subject cannot name a directory",
                             field="subject")
    return ("NPKI", ca_name, "USER", parts[1])
