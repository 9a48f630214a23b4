"""Results of smartcard operations (plain data, no PC/SC)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, unique

from cryptography import x509

from devices.smartcard.errors import InvalidPinError, PinBlockedError
from devices.smartcard.piv import Slot


@unique
class PinOutcome(Enum):
    OK = "ok"
    WRONG = "wrong"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class PinResult:
    outcome: PinOutcome
    attempts_remaining: int

    @classmethod
    def from_error(cls, exc: InvalidPinError) -> PinResult:
        if isinstance(exc, PinBlockedError) or exc.attempts_remaining == 0:
            return cls(PinOutcome.BLOCKED, 0)
        return cls(PinOutcome.WRONG, exc.attempts_remaining)


@dataclass(frozen=True)
class CertificateInfo:
    slot: Slot
    certificate: x509.Certificate


@dataclass(frozen=True)
class PivStatus:
    guid: bytes
    fascn: bytes
    expiry: str
    pin_attempts_remaining: int
    pin_blocked: bool
    certificates: list[CertificateInfo]


@dataclass(frozen=True)
class CardInfo:
    reader: str
    atr: bytes
    applets: list[tuple[str, bytes]]


@dataclass(frozen=True)
class SignResult:
    pin: PinResult
    signature: bytes
