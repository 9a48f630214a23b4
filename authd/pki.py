"""A development certificate authority: the server certificate and client certificates whose
subject carries the caller's institution (O), role (OU) and name (CN). For demos and tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authd.context import Role
from devices.errors import BadRequest

CA_NAME = "ca"
SERVER_NAME = "server"


@dataclass(frozen=True)
class ClientSpec:
    name: str
    institution: str
    role: Role

    @classmethod
    def parse(cls, text: str) -> ClientSpec:
        """``NAME:INSTITUTION:ROLE``, e.g. ``bank-a-teller:bank-a:branch``."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise BadRequest(f"client spec must be NAME:INSTITUTION:ROLE, got {text!r}")
        try:
            role = Role(parts[2])
        except ValueError:
            raise BadRequest(f"unknown role {parts[2]!r}") from None
        return cls(parts[0], parts[1], role)


DEFAULT_CLIENTS = [
    ClientSpec(f"{bank}-{kind}", bank, role)
    for bank in ("bank-a", "bank-b", "bank-c")
    for kind, role in (("teller", Role.BRANCH), ("backend", Role.BACKEND))
] + [ClientSpec("ops", "authd-ops", Role.ADMIN)]


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca_name: x509.Name,
           ca_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           sans: list[x509.GeneralName] | None = None,
           usage: list[x509.ObjectIdentifier] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(ca_name)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=825))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def create_dev_pki(out: Path, clients: list[ClientSpec] | None = None,
                   hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Path:
    """Write ca.pem, server.pem/.key and NAME.pem/.key for each client into ``out``.

    An existing CA in ``out`` is reused, so new clients can be added later."""
    out.mkdir(parents=True, exist_ok=True)
    ca_cert_path, ca_key_path = out / f"{CA_NAME}.pem", out / f"{CA_NAME}.key"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_name = x509.load_pem_x509_certificate(ca_cert_path.read_bytes()).subject
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authd development CA")])
        ca_cert = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))

    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authd")]),
                         server_key, ca_name, ca_key, sans=sans,
                         usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    _write(out / f"{SERVER_NAME}.key", _key_pem(server_key), private=True)
    _write(out / f"{SERVER_NAME}.pem", server_cert.public_bytes(serialization.Encoding.PEM))

    for spec in DEFAULT_CLIENTS if clients is None else clients:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, spec.institution),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, spec.role.value),
            x509.NameAttribute(NameOID.COMMON_NAME, spec.name),
        ])
        cert = _issue(subject, key, ca_name, ca_key, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
        _write(out / f"{spec.name}.key", _key_pem(key), private=True)
        _write(out / f"{spec.name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return out
