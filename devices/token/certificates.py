"""Certificates on the token and their renewal state (DOMAIN §6; the rules are in
:mod:`devices.certificate.validity`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devices.certificate.validity import (
    KST,
    RENEWAL_WINDOW_DAYS,
    RenewalState,
    renewal_state,
    renewal_window,
)
from devices.errors import BadRequest

__all__ = [
    "KST",
    "RENEWAL_WINDOW_DAYS",
    "CertificateInfo",
    "RenewalState",
    "certificate_info",
    "load_certificate",
    "renewal_state",
    "renewal_window",
]


@dataclass(frozen=True)
class CertificateInfo:
    key_id: bytes
    label: str
    subject: str
    issuer: str
    serial: int
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    renewal: RenewalState
    renewable_from: dt.datetime  # aware, Asia/Seoul
    renewable_until: dt.datetime  # aware, Asia/Seoul (23:59:59 on the expiry day)
    der: bytes


def load_certificate(der_or_pem: bytes) -> x509.Certificate:
    try:
        if der_or_pem.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(der_or_pem)
        return x509.load_der_x509_certificate(der_or_pem)
    except ValueError:
        raise BadRequest(
            "the certificate is not a valid X.509 certificate (DER or PEM)"
        ) from None


def certificate_info(
    cert: x509.Certificate,
    key_id: bytes,
    label: str,
    now: dt.datetime,
    window_days: int = RENEWAL_WINDOW_DAYS,
) -> CertificateInfo:
    since, until = renewal_window(cert.not_valid_after_utc, window_days)
    return CertificateInfo(
        key_id=key_id,
        label=label,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        renewal=renewal_state(
            cert.not_valid_before_utc, cert.not_valid_after_utc, now, window_days
        ),
        renewable_from=since,
        renewable_until=until,
        der=cert.public_bytes(serialization.Encoding.DER),
    )
