"""The certificate's life at the registration authority (the bank) and the CA (CA terms).

- Issuance is five steps (DOMAIN §6; the issuance page): 1 choose the type, 2 identity
  check, 3 a security means (security card or OTP), 4 account details, 5 password and storage
  location. They are held as an issuance request that is cancelled when not completed within
  7 days of the application (CA art. 6(3)).
- Cancellation within 7 days of the application or of issuance refunds the fee and revokes the
  certificate (CA art. 12(1)); the RA may deduct its expenses (art. 12(2)).
- Use ends (CA art. 9) on expiry, the holder's death or dissolution, a lost or leaked key,
  fraudulent issuance; a certificate may be suspended and restored (art. 5).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum, unique

from cryptography import x509

from devices.errors import BadRequest, WrongState

REQUEST_DAYS = 7  # CA art. 6(3)
CANCELLATION_DAYS = 7  # CA art. 12(1)


@unique
class IssuanceStep(IntEnum):
    TYPE = 1  # 인증서 종류 선택
    IDENTITY = 2  # 사용자 본인확인
    SECURITY_MEANS = 3  # 보안수단입력 (security card or OTP)
    ACCOUNT = 4  # 계정정보입력
    STORAGE = 5  # 암호 및 저장위치 (the certificate is issued onto the medium)


@unique
class RequestKind(StrEnum):
    ISSUE = "issue"
    REISSUE = "reissue"  # needs additional authentication (FAQ)


@unique
class RequestState(StrEnum):
    OPEN = "open"
    ISSUED = "issued"
    CANCELLED = "cancelled"  # by the applicant or the teller
    EXPIRED = "expired"  # not completed within 7 days (CA art. 6(3))
    REFUSED = "refused"  # incident list, failed additional authentication (CA art. 6(4))


@unique
class StorageLocation(StrEnum):
    """Where the key and certificate live (step 5)."""

    DISK = "disk"  # hard disk: an encrypted key file
    REMOVABLE_DISK = "removable_disk"  # USB stick: the same files
    TOKEN = "token"  # HSM security token: key generated on it, never leaving it
    SMARTCARD = "smartcard"  # IC card: key generated on it, never leaving it

    @property
    def on_device(self) -> bool:
        return self in (StorageLocation.TOKEN, StorageLocation.SMARTCARD)


@unique
class CertificateStatus(StrEnum):
    """What the CA records; expiry is read from the validity period (:func:`effective`)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # 효력정지 (certificateHold): may be restored
    REVOKED = "revoked"  # 폐지: final
    EXPIRED = "expired"  # never stored: the validity period ended (CA art. 9(4))


@unique
class RevocationReason(StrEnum):
    """Why a certificate was revoked, with the RFC 5280 reason the CRL and OCSP carry."""

    SUBSCRIBER_REQUEST = "subscriber_request"  # the holder asked (CA art. 5)
    CANCELLED = "cancelled"  # cancelled within 7 days, fee refunded (CA art. 12)
    HOLDER_DEAD = "holder_dead"  # death or dissolution (CA art. 9(1))
    KEY_LOST = "key_lost"  # signing key lost or damaged (CA art. 9(6))
    KEY_LEAKED = "key_leaked"  # signing key stolen or leaked (CA art. 9(6))
    FRAUDULENT = "fraudulent"  # fraudulently issued (CA art. 9(5); 9(2)-(3))
    SUPERSEDED = "superseded"  # replaced by a renewal or reissue
    SUBSCRIBER_DATA_CHANGED = "subscriber_data_changed"

    @property
    def crl_reason(self) -> x509.ReasonFlags:
        return _CRL_REASONS[self]

    @property
    def article(self) -> str:
        return _ARTICLES[self]


_CRL_REASONS = {
    RevocationReason.SUBSCRIBER_REQUEST: x509.ReasonFlags.unspecified,
    RevocationReason.CANCELLED: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.HOLDER_DEAD: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.KEY_LOST: x509.ReasonFlags.key_compromise,
    RevocationReason.KEY_LEAKED: x509.ReasonFlags.key_compromise,
    RevocationReason.FRAUDULENT: x509.ReasonFlags.privilege_withdrawn,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.SUBSCRIBER_DATA_CHANGED: x509.ReasonFlags.affiliation_changed,
}
_ARTICLES = {
    RevocationReason.SUBSCRIBER_REQUEST: "CA art. 5",
    RevocationReason.CANCELLED: "CA art. 12",
    RevocationReason.HOLDER_DEAD: "CA art. 9(1)",
    RevocationReason.KEY_LOST: "CA art. 9(6)",
    RevocationReason.KEY_LEAKED: "CA art. 9(6)",
    RevocationReason.FRAUDULENT: "CA art. 9(5)",
    RevocationReason.SUPERSEDED: "CA art. 5",
    RevocationReason.SUBSCRIBER_DATA_CHANGED: "CA art. 5",
}


@unique
class EndOfUse(StrEnum):
    """The causes of CA art. 9 a teller records; all but expiry revoke the certificate."""

    EXPIRED = "expired"
    HOLDER_DEAD = "holder_dead"
    KEY_LOST = "key_lost"
    KEY_LEAKED = "key_leaked"
    FRAUDULENT = "fraudulent"

    @property
    def revocation(self) -> RevocationReason | None:
        return None if self is EndOfUse.EXPIRED else RevocationReason(self.value)


def effective(status: CertificateStatus, not_after: dt.datetime,
              now: dt.datetime) -> CertificateStatus:
    """The status a relying party sees: a revoked certificate stays revoked, otherwise one
    past its notAfter is expired."""
    if status is CertificateStatus.REVOKED:
        return status
    if now > not_after:
        return CertificateStatus.EXPIRED
    return status


# ------------------------------------------------------------------------ issuance requests


@dataclass(frozen=True)
class IssuanceRequest:
    id: str
    institution: str
    customer_ref: str
    certificate_type: str
    kind: RequestKind
    state: RequestState
    step: IssuanceStep  # the last step completed
    created_at: dt.datetime  # aware
    expires_at: dt.datetime  # created_at + 7 days
    replaces_serial: str = ""  # a reissue: the certificate it replaces
    storage: StorageLocation | None = None
    certificate_serial: str = ""
    reason: str = ""  # why it was refused or cancelled

    def state_at(self, now: dt.datetime) -> RequestState:
        if self.state is RequestState.OPEN and now >= self.expires_at:
            return RequestState.EXPIRED
        return self.state


def request_deadline(created_at: dt.datetime, days: int = REQUEST_DAYS) -> dt.datetime:
    return created_at + dt.timedelta(days=days)


def advance(request: IssuanceRequest, step: IssuanceStep, now: dt.datetime) -> IssuanceRequest:
    """The request with ``step`` done; the steps go in order, within the 7 days."""
    state = request.state_at(now)
    if state is RequestState.EXPIRED:
        raise WrongState(
            f"issuance request {request.id} was not completed within 7 days of "
            f"{request.created_at.date().isoformat()} and is cancelled (CA art. 6(3)); "
            "apply again", reason="ISSUANCE_REQUEST_EXPIRED")
    if state is not RequestState.OPEN:
        raise WrongState(f"issuance request {request.id} is {state.value}",
                         reason="ISSUANCE_REQUEST_CLOSED")
    if step != request.step + 1:
        expected = IssuanceStep(request.step + 1) if request.step < IssuanceStep.STORAGE else None
        raise WrongState(
            f"issuance step {step.name.lower()} comes after "
            f"{request.step.name.lower()}; next is "
            f"{expected.name.lower() if expected else 'nothing'}",
            reason="ISSUANCE_STEP_OUT_OF_ORDER")
    return replace(request, step=step)


# ---------------------------------------------------------------------------- cancellation


@dataclass(frozen=True)
class Refund:
    fee_krw: int
    deducted_krw: int

    @property
    def refunded_krw(self) -> int:
        return max(0, self.fee_krw - self.deducted_krw)


def cancellation(issued_at: dt.datetime, now: dt.datetime, fee_krw: int,
                 deduction_krw: int = 0, days: int = CANCELLATION_DAYS) -> Refund:
    """The refund of a cancellation ``now`` of a certificate issued at ``issued_at``; after the
    7 days a cancellation is refused (the certificate can still be revoked, without refund)."""
    if now < issued_at:
        raise BadRequest("the cancellation time is before the issuance")
    if now - issued_at > dt.timedelta(days=days):
        raise WrongState(
            f"a certificate can be cancelled with a refund only within {days} days of its "
            f"issuance (CA art. 12); this one was issued {issued_at.date().isoformat()}: "
            "revoke it instead", reason="CANCELLATION_PERIOD_OVER")
    return Refund(fee_krw, min(fee_krw, deduction_krw))
