"""The ``[certificate]`` section: the CA, the checks before a signature counts, the rules of
DOMAIN §6 with their cited values as defaults, and the certificate types.

```toml
[certificate]
ca_url = "http://ca.example:8080"   # the CA's registration-authority endpoint ("" : none)
ca_certificates = "/etc/authd/ca.pem"  # trusted CA certificates (PEM), the chains' anchors
responder_down = "closed"           # no OCSP nor CRL answer: refuse ("closed") or allow ("open")
check_before_sign = true            # token and smartcard signatures need a valid certificate
unbound_keys = "allow"              # a key with no certificate next to it: "allow" or "refuse"
disk_roots = ["/media"]             # where disk / removable-disk certificates may be written
```
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from authd.settings import setting
from devices.certificate import types as cert_types
from devices.certificate.types import CertificateType


@dataclass(frozen=True)
class CertificateSettings:
    SECTION: ClassVar[str] = "certificate"
    ca_url: str = setting("", "the CA's registration-authority endpoint (the simulator's JSON "
                              "protocol); empty: no CA, issuance answers UNAVAILABLE")
    ca_name: str = setting("yessign", "the CA's directory name in the NPKI disk layout")
    ca_timeout: float = setting(10.0, "seconds a call to the CA may take")
    ca_certificates: str = setting("", "trusted CA certificates (PEM file): a certificate must "
                                       "chain to one of them")
    ocsp_url: str = setting("", "OCSP responder for certificates without an AIA OCSP URL")
    crl_url: str = setting("", "CRL for certificates without a CRL distribution point")
    ocsp_timeout: float = setting(3.0, "seconds an OCSP request may take")
    crl_timeout: float = setting(10.0, "seconds a CRL download may take")
    cache_max_seconds: float = setting(3600.0, "a status is cached until the responder's "
                                                "nextUpdate, and at most this long")
    cache_entries: int = setting(100_000, "statuses kept in memory at most")
    responder_down: Literal["closed", "open"] = setting(
        "closed", "when neither OCSP nor the CRL answers: closed refuses the signature, open "
                  "allows it (and says so)")
    check_before_sign: bool = setting(True, "check the key's certificate before a token or "
                                            "smartcard signs with it")
    unbound_keys: Literal["allow", "refuse"] = setting(
        "allow", "a key with no certificate next to it signs (allow) or is refused")
    renewal_window_days: int = setting(60, "renewal from this many days before expiry until "
                                           "23:59:59 KST on the expiry day")
    request_days: int = setting(7, "an issuance request not completed within this many days is "
                                   "cancelled (CA art. 6(3))")
    cancellation_days: int = setting(7, "cancellation with refund within this many days of "
                                        "issuance (CA art. 12)")
    refund_deduction_krw: int = setting(0, "expenses deducted from a refund (CA art. 12(2))")
    expiry_refresh_seconds: float = setting(60.0, "how often the expiring-certificates metric "
                                                  "is recounted")
    one_time_number_days: float = setting(7.0, "a one-time number registered at a branch is "
                                               "valid this long")
    one_time_number_digits: int = setting(8, "digits of a branch-registered one-time number")
    disk_roots: tuple[Path, ...] = setting((), "directories where disk and removable-disk "
                                               "certificates may be written (NPKI layout)")
    key_file_iterations: int = setting(2048, "PBKDF2 iterations of a signPri.key")
    key_spec: Literal["ec-p256", "rsa-2048"] = setting("ec-p256", "key pair of a new "
                                                                  "certificate")
    types: tuple[CertificateType, ...] = setting(cert_types.DEFAULT_TYPES,
                                                 "certificate types: {code, name, fee_krw, "
                                                 "usage} tables")

    def problems(self) -> list[str]:
        out = cert_types.check_unique(self.types)
        if not self.types:
            out.append("types must name at least one certificate type")
        for name in ("ca_timeout", "ocsp_timeout", "crl_timeout", "cache_max_seconds",
                     "expiry_refresh_seconds", "one_time_number_days"):
            if getattr(self, name) <= 0:
                out.append(f"{name} must be positive")
        if not 1 <= self.renewal_window_days <= 365:
            out.append("renewal_window_days must be 1..365")
        if not 1 <= self.request_days <= 90 or not 1 <= self.cancellation_days <= 90:
            out.append("request_days and cancellation_days must be 1..90")
        if not 6 <= self.one_time_number_digits <= 12:
            out.append("one_time_number_digits must be 6..12")
        if not 1000 <= self.key_file_iterations <= 10_000_000:
            out.append("key_file_iterations must be 1000..10000000")
        if self.cache_entries < 1 or self.refund_deduction_krw < 0:
            out.append("cache_entries must be positive and refund_deduction_krw >= 0")
        return out

    @property
    def request_period(self) -> dt.timedelta:
        return dt.timedelta(days=self.request_days)


SETTINGS = CertificateSettings
