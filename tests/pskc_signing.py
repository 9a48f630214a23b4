"""Signed PSKC files (RFC 6030 §7) for the tests: a test CA, manufacturers' signing
certificates it issues, and files python-pskc writes and signs with them (signxml)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import pskc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
RFC_SEED = b"12345678901234567890"  # RFC 4226's SHA-1 seed


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authd tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class Signer:
    """A manufacturer's signing key and the certificate the test CA issued for it."""

    name: str
    key_pem: bytes
    cert_pem: str

    def write_certificate(self, directory: Path) -> Path:
        path = directory / f"{self.name.lower().replace(' ', '-')}-signing.pem"
        path.write_text(self.cert_pem)
        return path


class TestCa:
    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = _name("authd test manufacturers' CA")

    def certificate_pem(self) -> str:
        """The CA's own certificate (a bundle the signers' certificates chain to)."""
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=30))
                .not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def signer(self, manufacturer: str, *, elliptic: bool = False,
               valid_from: dt.timedelta = dt.timedelta(days=-1),
               valid_until: dt.timedelta = dt.timedelta(days=365)) -> Signer:
        """A signing certificate valid from ``now + valid_from`` to ``now + valid_until``."""
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if elliptic
            else rsa.generate_private_key(public_exponent=65537, key_size=2048))
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(f"{manufacturer} seed files"))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + valid_from)
                .not_valid_after(now + valid_until)
                .sign(self.key, hashes.SHA256()))
        return Signer(manufacturer,
                      key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()),
                      cert.public_bytes(serialization.Encoding.PEM).decode())


def hotp_key(serial: str, manufacturer: str, seed: bytes = RFC_SEED) -> dict:
    return {"serial": serial, "manufacturer": manufacturer, "algorithm": HOTP,
            "response_length": 6, "response_encoding": "DECIMAL", "secret": seed,
            "counter": 0}


def pskc_file(*keys: dict, signer: Signer | None = None, key: bytes | None = None) -> bytes:
    """A PSKC file of ``keys`` written by python-pskc, signed by ``signer`` when given
    (``key``: the seeds encrypted under that pre-shared key, with MACs)."""
    container = pskc.PSKC()
    if key:
        container.encryption.setup_preshared_key(key=key)
        container.mac.setup(algorithm="hmac-sha1")
    for k in keys:
        container.add_key(**k)
    if signer is not None:
        if _is_ec(signer.key_pem):
            container.signature.algorithm = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        container.signature.sign(signer.key_pem, signer.cert_pem)
    out = io.BytesIO()
    container.write(out)
    return out.getvalue()


def _is_ec(key_pem: bytes) -> bool:
    return isinstance(serialization.load_pem_private_key(key_pem, None),
                      ec.EllipticCurvePrivateKey)
