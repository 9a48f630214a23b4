"""Certificates on the token and their renewal state (DOMAIN §6).

A certificate is valid one year; it may be renewed from 60 days before expiry until
23:59:59 on the expiry day, Korean time (Asia/Seoul); after that only reissue works.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum, unique
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devices.errors import BadRequest

KST = ZoneInfo("Asia/Seoul")
RENEWAL_WINDOW_DAYS = 60


@unique
class RenewalState(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"  # in use; too early to renew
    RENEWABLE = "renewable"  # within the renewal window
    EXPIRED = "expired"  # reissue only


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


def renewal_window(
    not_after: dt.datetime, window_days: int = RENEWAL_WINDOW_DAYS
) -> tuple[dt.datetime, dt.datetime]:
    """(first moment renewable, last moment renewable), both in Korean time."""
    expiry_day = not_after.astimezone(KST).date()
    until = dt.datetime.combine(expiry_day, dt.time(23, 59, 59), tzinfo=KST)
    since = dt.datetime.combine(
        expiry_day - dt.timedelta(days=window_days), dt.time(0, 0, 0), tzinfo=KST
    )
    return since, until


def renewal_state(
    not_before: dt.datetime,
    not_after: dt.datetime,
    now: dt.datetime,
    window_days: int = RENEWAL_WINDOW_DAYS,
) -> RenewalState:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    since, until = renewal_window(not_after, window_days)
    if now < not_before:
        return RenewalState.NOT_YET_VALID
    if now > until.replace(microsecond=999_999):
        return RenewalState.EXPIRED
    if now >= since:
        return RenewalState.RENEWABLE
    return RenewalState.VALID


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
