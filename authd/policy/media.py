"""What media a customer holds at an institution, and in which state.

The grade computation and the checks of a presented medium ask one question through
:class:`CustomerMedia`: "which media does customer X hold at institution I, in which state".
:class:`StoreMedia` answers it from the store: security cards name their customer; OTP devices,
tokens and smartcards are tied to a customer by a link a teller records
(``policy_media_links``) until every registration of a medium names the institution's own
customer reference (issue 10), when the customer service answers instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique
from typing import Protocol

from authd.storage import Tx


@unique
class MediumKind(StrEnum):
    OTP = "otp"
    SECURITY_CARD = "security_card"
    TOKEN = "token"
    SMARTCARD = "smartcard"


LINKABLE = (MediumKind.OTP, MediumKind.TOKEN, MediumKind.SMARTCARD)


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


_OTP_STATES = {"active": MediumState.ACTIVE, "locked": MediumState.LOCKED,
               "lost": MediumState.LOST}
_CARD_STATES = {"active": MediumState.ACTIVE, "restricted": MediumState.RESTRICTED}


class StoreMedia:
    """:class:`CustomerMedia` over the store's tables of OTP devices, security cards and
    token registrations."""

    def held(self, tx: Tx, institution: str, customer_id: str) -> list[HeldMedium]:
        out: list[HeldMedium] = []
        # the token branch first: PostgreSQL types the NULL keys of the others after it
        rows = tx.all(
            "SELECT l.medium, l.serial, 'active', '', '', '', l.public_key"
            " FROM policy_media_links l JOIN token_registrations t"
            " ON t.token_serial = l.serial AND t.institution = l.institution"
            " AND t.customer_id = l.customer_id AND t.active = 1"
            " WHERE l.institution = ? AND l.customer_id = ? AND l.medium IN"
            " ('token', 'smartcard')"
            " UNION ALL"
            " SELECT 'security_card', serial, state, medium, '', '', NULL FROM security_cards"
            " WHERE institution = ? AND customer_id = ? AND state IN ('active', 'restricted')"
            " UNION ALL"
            " SELECT 'otp', d.serial, d.state, '', d.issuer, r.channel, NULL"
            " FROM policy_media_links l"
            " JOIN otp_registrations r ON r.serial = l.serial AND r.institution = l.institution"
            " JOIN otp_devices d ON d.serial = l.serial"
            " WHERE l.institution = ? AND l.customer_id = ? AND l.medium = 'otp'",
            (institution, customer_id) * 3)
        for kind, serial, state, medium, issuer, channel, key in sorted(
                rows, key=lambda r: (r[0] != "security_card", r[0], r[1])):
            if kind == "security_card":
                out.append(HeldMedium(MediumKind.SECURITY_CARD, serial, _CARD_STATES[state],
                                      braille=medium == "braille"))
            elif kind == "otp":
                if state in _OTP_STATES:
                    out.append(HeldMedium(MediumKind.OTP, serial, _OTP_STATES[state],
                                          issued_here=issuer == institution,
                                          at_branch=channel == "branch"))
            else:
                out.append(HeldMedium(MediumKind(kind), serial, MediumState.ACTIVE,
                                      public_key=bytes(key)))
        return out
