"""May a signature by this certificate's key count? (EFT art. 14(2)1, 14(4); CA art. 8(4)-(5))

The relying party checks the validity period, the chain, and the revocation status before it
relies on a certificate. The verdict names the reason so the customer can be told it (EFT
art. 14(3)) and what to do (reissue, renew, restore at a branch).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum, unique

from cryptography import x509

from devices.certificate.revocation import Revocation, RevocationStatus
from devices.certificate.validity import KST


@unique
class Verdict(StrEnum):
    VALID = "valid"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    UNTRUSTED = "untrusted"  # no chain to a trusted CA
    UNKNOWN = "unknown"  # the CA's responder does not know it
    STATUS_UNAVAILABLE = "status_unavailable"  # no responder answered

    @property
    def reason(self) -> str:
        """The stable error reason a refused signature carries."""
        return "CERTIFICATE_" + self.name


@dataclass(frozen=True)
class Reliance:
    verdict: Verdict
    allowed: bool
    message: str  # what to tell the customer; never a secret
    status: RevocationStatus | None = None
    failed_open: bool = False  # allowed only because the responder was down and policy is open


def _kst(moment: dt.datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")


_REASON_WORDS = {
    x509.ReasonFlags.key_compromise: "the key was lost or leaked",
    x509.ReasonFlags.cessation_of_operation: "its use ended",
    x509.ReasonFlags.privilege_withdrawn: "it was issued fraudulently",
    x509.ReasonFlags.superseded: "it was replaced",
    x509.ReasonFlags.affiliation_changed: "the subscriber's data changed",
    x509.ReasonFlags.unspecified: "the subscriber asked",
}


def period(cert: x509.Certificate, now: dt.datetime) -> Reliance | None:
    """The validity period's verdict, or None while it is valid."""
    if now < cert.not_valid_before_utc:
        return Reliance(Verdict.NOT_YET_VALID, False,
                        f"the certificate is valid only from {_kst(cert.not_valid_before_utc)}")
    if now > cert.not_valid_after_utc:
        return Reliance(Verdict.EXPIRED, False,
                        f"the certificate expired at {_kst(cert.not_valid_after_utc)}; "
                        "it can only be reissued (EFT art. 14(2)1, 14(4))")
    return None


def by_status(status: RevocationStatus) -> Reliance:
    if status.state is Revocation.GOOD:
        return Reliance(Verdict.VALID, True, "the certificate is valid", status)
    if status.state is Revocation.SUSPENDED:
        return Reliance(Verdict.SUSPENDED, False,
                        "the certificate is suspended at the CA; it can be restored at a "
                        "branch (EFT art. 14(2)1)", status)
    if status.state is Revocation.UNKNOWN:
        return Reliance(Verdict.UNKNOWN, False,
                        "the CA does not know this certificate", status)
    when = f" on {_kst(status.revoked_at)}" if status.revoked_at else ""
    why = _REASON_WORDS.get(status.reason or x509.ReasonFlags.unspecified, "")
    return Reliance(Verdict.REVOKED, False,
                    f"the certificate was revoked at the CA{when}"
                    f"{' (' + why + ')' if why else ''}; it can only be reissued "
                    "(EFT art. 14(2)1, 14(4))", status)


def unavailable(why: str, fail_open: bool) -> Reliance:
    if fail_open:
        return Reliance(Verdict.STATUS_UNAVAILABLE, True,
                        f"the certificate's revocation status could not be checked ({why}); "
                        "allowed by the configured fail-open policy", failed_open=True)
    return Reliance(Verdict.STATUS_UNAVAILABLE, False,
                    f"the certificate's revocation status could not be checked ({why}); "
                    "signing is refused until the CA's responder answers")
