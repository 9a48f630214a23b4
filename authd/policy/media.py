"""What media a customer holds at an institution, and in which state, as the policy uses it.

The grade computation and the checks of a presented medium ask one question through
:class:`CustomerMedia`: "which media does customer X hold at institution I, in which state".
:class:`CenterMedia` answers it from the customer model (``authd.customer``: the OTP
registrations, security cards and the branch registrations of tokens and smartcards, each
naming the institution's customer reference), in the decision's own transaction and in one
statement (``CustomerService.live_in``). A token's or smartcard's signing key is the one kept
with its branch registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique
from typing import Protocol

from authd.customer import models as cm
from authd.customer.service import CustomerService
from authd.storage import Tx
from authd.storage.database import Row, Statement


@unique
class MediumKind(StrEnum):
    OTP = "otp"
    SECURITY_CARD = "security_card"
    TOKEN = "token"
    SMARTCARD = "smartcard"


@unique
class MediumState(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"  # OTP: 10 wrong codes at any institution
    LOST = "lost"  # reported lost or stolen
    RESTRICTED = "restricted"  # security card: 3 wrong answers
    ENDED = "ended"  # replaced, expired, revoked, deregistered


@dataclass(frozen=True)
class HeldMedium:
    kind: MediumKind
    serial: str
    state: MediumState
    braille: bool = False  # a braille security card (EFT art. 14(1)6 라)
    issued_here: bool = True  # OTP: issued by this institution (DOMAIN §3)
    at_branch: bool = True  # registered at a branch (tokens and smartcards always are)
    public_key: bytes = b""  # token, smartcard: DER SubjectPublicKeyInfo of the key

    @property
    def usable(self) -> bool:
        return self.state is MediumState.ACTIVE


class CustomerMedia(Protocol):
    def held(self, tx: Tx, institution: str, customer_id: str) -> list[HeldMedium]:
        """Every medium ``customer_id`` holds at ``institution`` (ended ones left out)."""
        ...

    def statement(self, institution: str, customer_id: str) -> Statement:
        """The read behind ``held``, to send with others (``Tx.all_of``)."""
        ...

    def held_from(self, institution: str, rows: list[Row]) -> list[HeldMedium]:
        """``held`` from the rows of ``statement``."""
        ...


KINDS = {cm.MediumKind.OTP: MediumKind.OTP, cm.MediumKind.SECURITY_CARD: MediumKind.SECURITY_CARD,
         cm.MediumKind.BRAILLE_SECURITY_CARD: MediumKind.SECURITY_CARD,
         cm.MediumKind.HSM_TOKEN: MediumKind.TOKEN, cm.MediumKind.SMARTCARD: MediumKind.SMARTCARD}
STATES = {cm.MediumState.ACTIVE: MediumState.ACTIVE, cm.MediumState.LOCKED: MediumState.LOCKED,
          cm.MediumState.REPORTED_LOST: MediumState.LOST,
          cm.MediumState.RESTRICTED: MediumState.RESTRICTED}


def held_medium(m: cm.CustomerMedium) -> HeldMedium:
    return HeldMedium(KINDS[m.kind], m.serial, STATES.get(m.state, MediumState.ENDED),
                      braille=m.kind is cm.MediumKind.BRAILLE_SECURITY_CARD,
                      issued_here=m.issued_here or m.kind is not cm.MediumKind.OTP,
                      at_branch=m.channel == "branch", public_key=m.public_key)


class CenterMedia:
    """:class:`CustomerMedia` over the customer model of this center."""

    def __init__(self, customers: CustomerService) -> None:
        self.customers = customers

    def held(self, tx: Tx, institution: str, customer_id: str) -> list[HeldMedium]:
        return self.held_from(institution, tx.all(*self.statement(institution, customer_id)))

    def statement(self, institution: str, customer_id: str) -> Statement:
        return self.customers.live_statement(institution, customer_id)

    def held_from(self, institution: str, rows: list[Row]) -> list[HeldMedium]:
        found = [held_medium(m) for m in self.customers.live_from(institution, rows)]
        # security cards first, then by kind and serial (the order the policy shows)
        return sorted(found, key=lambda m: (m.kind is not MediumKind.SECURITY_CARD,
                                            m.kind.value, m.serial))
