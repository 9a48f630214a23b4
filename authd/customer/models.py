"""The kinds and states of a customer's media, as the center reports them (plain data)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique


@unique
class MediumKind(StrEnum):
    OTP = "otp"
    SECURITY_CARD = "security_card"
    BRAILLE_SECURITY_CARD = "braille_security_card"
    HSM_TOKEN = "token"
    SMARTCARD = "smartcard"


# Media a customer brings to a branch to be registered there (BranchRegistrationService).
HELD = (MediumKind.HSM_TOKEN, MediumKind.SMARTCARD)


@unique
class MediumState(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    REPORTED_LOST = "reported_lost"
    RESTRICTED = "restricted"
    REVOKED = "revoked"
    REPLACED = "replaced"
    EXPIRED = "expired"
    DEREGISTERED = "deregistered"


# States in which a medium is no longer the customer's to use (listed only on request).
ENDED = frozenset({MediumState.REVOKED, MediumState.REPLACED, MediumState.EXPIRED,
                   MediumState.DEREGISTERED})


@dataclass(frozen=True)
class BranchRegistration:
    """A token or smartcard registered at a branch of ``institution`` for its customer."""

    id: str
    medium: MediumKind
    institution: str
    serial: str
    customer_id: str
    terminal: str
    operator: str
    registered_at: float
    deregistered_at: float | None
    active: bool
    public_key: bytes = b""  # DER SubjectPublicKeyInfo of the key it signs with (b"": none)


@unique
class ExemptionOutcome(StrEnum):
    EXEMPT = "exempt"
    NOT_REGISTERED = "not_registered"
    OTHER_CUSTOMER = "other_customer"
    MEDIUM_NOT_EXEMPT = "medium_not_exempt"


@dataclass(frozen=True)
class Exemption:
    outcome: ExemptionOutcome
    reason: str
    registration: BranchRegistration | None  # only when registered for this customer

    @property
    def exempt(self) -> bool:
        return self.outcome is ExemptionOutcome.EXEMPT


@dataclass(frozen=True)
class CustomerMedium:
    """One medium of a customer at the asking institution."""

    kind: MediumKind
    serial: str
    state: MediumState
    channel: str  # "branch" or "online"
    registered_at: float
    updated_at: float
    branch_registered: bool = False
    issued_here: bool = False
    consecutive_failures: int = 0
    attempts_left: int = 0
    replaced_by: str = ""
    terminal: str = ""
    registration_id: str = ""
    public_key: bytes = b""  # tokens and smartcards: the registered signing key (DER SPKI)

    @property
    def ended(self) -> bool:
        return self.state in ENDED
