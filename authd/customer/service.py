"""Which media an institution's customer holds, in which state: read in one transaction from
every medium's rows (OTP registrations, security cards, token and smartcard branch
registrations), for the asking institution only.

This is the base of the security grade (DOMAIN.md §4): the answer is complete (every medium
registered for the customer at the institution) and typed (``models.MediumKind``,
``models.MediumState``). It shows nothing of other institutions: their registrations of the
same OTP device, their customer references, failure shares or the issuer; an OTP device's
replacement only when the asking institution has the new device too.
"""

from __future__ import annotations

from collections.abc import Mapping

from authd import validate
from authd.context import Caller
from authd.customer import repository as repo
from authd.customer.models import (
    HELD,
    CustomerMedium,
    MediumKind,
    MediumState,
)
from authd.customer.repository import BranchRegistrationRows
from authd.otp import repository as otp_repo
from authd.security_card import repository as card_repo
from authd.storage import Database, Tx
from authd.storage.database import Row, Statement
from devices.otp.rules import State as OtpState
from devices.security_card import CardState
from devices.security_card.verification import CARD_STATE_BY_NAME

OTP_STATES = {
    OtpState.ACTIVE: MediumState.ACTIVE,
    OtpState.LOCKED: MediumState.LOCKED,
    OtpState.LOST: MediumState.REPORTED_LOST,
    OtpState.REPLACED: MediumState.REPLACED,
    OtpState.EXPIRED: MediumState.EXPIRED,
}
CARD_STATES = {
    CardState.ACTIVE: MediumState.ACTIVE,
    CardState.RESTRICTED: MediumState.RESTRICTED,
    CardState.REVOKED: MediumState.REVOKED,
    CardState.REPLACED: MediumState.REPLACED,
}


class CustomerService:
    def __init__(self, db: Database, rows: Mapping[MediumKind, BranchRegistrationRows], *,
                 otp_lockout: int, card_max_failures: int) -> None:
        self.db = db
        self.rows = dict(rows)
        self.otp_lockout = otp_lockout
        self.card_max_failures = card_max_failures

    def media(self, caller: Caller, customer_id: str, *,
              include_ended: bool = False) -> list[CustomerMedium]:
        """Every medium registered for ``customer_id`` at the caller's institution, oldest
        registration first; without ``include_ended``, only those still in use."""
        validate.customer_ref(customer_id)
        institution = caller.institution

        def read(tx: Tx) -> list[CustomerMedium]:
            found = (self._otp(tx, institution, customer_id)
                     + self._cards(tx, institution, customer_id)
                     + self._held(tx, institution, customer_id))
            return sorted(found, key=lambda m: (m.registered_at, m.kind.value, m.serial))

        media = self.db.run(read, write=False)
        return media if include_ended else [m for m in media if not m.ended]

    def live_in(self, tx: Tx, institution: str, customer_id: str) -> list[CustomerMedium]:
        """The media ``customer_id`` still uses at ``institution`` (none ended), read in one
        statement of the caller's transaction: what a transfer decision asks on every call
        (``authd.policy``, which sends it with its other reads: ``live_statement``,
        ``live_from``). ``replaced_by`` is left empty (no live medium has one)."""
        return self.live_from(institution, tx.all(*self.live_statement(institution,
                                                                       customer_id)))

    def live_statement(self, institution: str, customer_id: str) -> Statement:
        return repo.live_media(institution, customer_id, [self.rows[m] for m in HELD])

    def live_from(self, institution: str, rows: list[Row]) -> list[CustomerMedium]:
        """The media of ``live_statement``'s rows."""
        out = []
        for (kind, serial, state, channel, registered_at, updated_at, issuer, failures, key,
             terminal, reg_id) in rows:
            if kind == "otp":
                failures = int(failures)
                out.append(CustomerMedium(
                    kind=MediumKind.OTP, serial=serial, state=OTP_STATES[OtpState(state)],
                    channel=channel, registered_at=float(registered_at),
                    updated_at=float(updated_at), issued_here=issuer == institution,
                    consecutive_failures=failures,
                    attempts_left=max(0, self.otp_lockout - failures)))
            elif kind == "security_card":
                failures = int(failures)
                out.append(CustomerMedium(
                    kind=MediumKind.BRAILLE_SECURITY_CARD if channel == "braille"
                    else MediumKind.SECURITY_CARD, serial=serial,
                    state=CARD_STATES[CARD_STATE_BY_NAME[state]], channel="branch",
                    registered_at=float(registered_at), updated_at=float(updated_at),
                    issued_here=True, consecutive_failures=failures,
                    attempts_left=max(0, self.card_max_failures - failures)))
            else:
                out.append(CustomerMedium(
                    kind=MediumKind(kind), serial=serial, state=MediumState.ACTIVE,
                    channel="branch", registered_at=float(registered_at),
                    updated_at=float(registered_at), branch_registered=True,
                    terminal=terminal, registration_id=reg_id,
                    public_key=bytes(key) if key is not None else b""))
        return sorted(out, key=lambda m: (m.registered_at, m.kind.value, m.serial))

    def _otp(self, tx: Tx, institution: str, customer_id: str) -> list[CustomerMedium]:
        out = []
        for device in otp_repo.registered_for(tx, institution, customer_id):
            replaced_by = device.replaced_by or ""
            if replaced_by and not otp_repo.is_registered(tx, replaced_by, institution):
                replaced_by = ""
            out.append(CustomerMedium(
                kind=MediumKind.OTP, serial=device.serial, state=OTP_STATES[device.state],
                channel=device.registration.channel,
                registered_at=device.registration.registered_at, updated_at=device.updated_at,
                issued_here=device.issuer == institution,
                consecutive_failures=device.failures,
                attempts_left=max(0, self.otp_lockout - device.failures),
                replaced_by=replaced_by))
        return out

    def _cards(self, tx: Tx, institution: str, customer_id: str) -> list[CustomerMedium]:
        return [CustomerMedium(
            kind=MediumKind.BRAILLE_SECURITY_CARD if card.braille else MediumKind.SECURITY_CARD,
            serial=card.serial, state=CARD_STATES[card.state], channel="branch",
            registered_at=card.issued_at, updated_at=card.updated_at, issued_here=True,
            consecutive_failures=card.failures,
            attempts_left=max(0, self.card_max_failures - card.failures)
            if card.live else 0,
            replaced_by=card.replaced_by)
            for card in card_repo.cards_of(tx, institution, customer_id)]

    def _held(self, tx: Tx, institution: str, customer_id: str) -> list[CustomerMedium]:
        return [CustomerMedium(
            kind=reg.medium, serial=reg.serial,
            state=MediumState.ACTIVE if reg.active else MediumState.DEREGISTERED,
            channel="branch", registered_at=reg.registered_at,
            updated_at=reg.deregistered_at or reg.registered_at,
            branch_registered=reg.active, terminal=reg.terminal, registration_id=reg.id,
            public_key=reg.public_key)
            for medium in HELD
            for reg in self.rows[medium].find(tx, institution, customer_id=customer_id,
                                              include_ended=True)]
