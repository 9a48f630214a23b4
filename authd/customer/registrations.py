"""The center's record of HSM tokens and smartcards registered in person at a branch.

``BranchRegistrations`` is what a branch node calls (TokenService.RegisterToken,
SmartcardService.RegisterCard): in process when the node also serves the center role
(``CenterRegistrations``, this module), over the branch → center link otherwise. Every call
acts for ``caller``'s institution only: another institution's registration of the same serial
is invisible, so a serial registered only elsewhere and one never registered get the same
answer. Blocking: callers run it off the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from authd import validate
from authd.audit import AuditLog
from authd.context import Caller
from authd.customer.models import (
    HELD,
    BranchRegistration,
    Exemption,
    ExemptionOutcome,
    MediumKind,
)
from authd.customer.repository import BranchRegistrationRows
from authd.storage import Database, Tx
from devices.errors import AlreadyPresent, BadRequest, NoSuchObject
from devices.policy.signatures import spki

T = TypeVar("T")
MAX_SERIAL = 64

NAMES = {MediumKind.HSM_TOKEN: "token", MediumKind.SMARTCARD: "smartcard"}
# The one answer for a serial the caller's institution has no registration of, for this
# customer: never registered, registered only elsewhere, or for another of its customers.
NOT_REGISTERED = "{name} {serial} is not registered at {institution} for this customer"
REASONS = {
    ExemptionOutcome.EXEMPT: "HSM security token registered at a branch (EFT art. 14(1)6)",
    ExemptionOutcome.NOT_REGISTERED: "not registered at a branch of this institution",
    ExemptionOutcome.OTHER_CUSTOMER: "registered at a branch of this institution for another "
                                     "customer",
    ExemptionOutcome.MEDIUM_NOT_EXEMPT: "registered at a branch, but EFT art. 14(1)6 exempts "
                                        "HSM security tokens only",
}


class BranchRegistrations(Protocol):
    """The center's branch registrations, as a branch node reaches them."""

    def register(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                 terminal: str, operator: str,
                 public_key: bytes = b"") -> BranchRegistration: ...

    def deregister(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                   operator: str, reason: str) -> BranchRegistration: ...

    def registrations(self, caller: Caller, medium: MediumKind | None, *, serial: str = "",
                      customer_id: str = "",
                      include_ended: bool = False) -> list[BranchRegistration]: ...

    def exemption(self, caller: Caller, medium: MediumKind, serial: str,
                  customer_id: str) -> Exemption: ...


def check_medium(medium: MediumKind) -> MediumKind:
    if medium not in HELD:
        raise BadRequest("kind must be HSM_TOKEN or SMARTCARD: only those are registered at a "
                         "branch this way", field="kind")
    return medium


def check_serial(serial: str, name: str = "serial") -> str:
    validate.text(serial, name, required=True, max_length=MAX_SERIAL)
    if serial != serial.strip():
        raise BadRequest(f"{name} must not start or end with spaces", field=name)
    return serial


class CenterRegistrations:
    """``BranchRegistrations`` on this node's store, with every change audited in its own
    transaction (action ``<medium>.register`` / ``.deregister``, target ``<medium>:<serial>``)."""

    def __init__(self, db: Database, audit: AuditLog,
                 rows: Mapping[MediumKind, BranchRegistrationRows],
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.audit = audit
        self.rows = dict(rows)
        self.clock = clock

    def register(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                 terminal: str, operator: str,
                 public_key: bytes = b"") -> BranchRegistration:
        """``public_key``: the key the medium signs transfers with (DER or PEM
        SubjectPublicKeyInfo, or a certificate holding it), kept as DER SubjectPublicKeyInfo
        with the registration; the policy checks a transfer's signature against it."""
        rows = self.rows[check_medium(medium)]
        key = spki(public_key) if public_key else b""
        check_serial(serial)
        validate.customer_ref(customer_id)
        validate.text(operator, "operator_id", required=True)
        terminal = validate.text(terminal, "terminal") or caller.subject
        name = NAMES[medium]

        def register(tx: Tx) -> BranchRegistration:
            existing = rows.active(tx, caller.institution, serial, lock=True)
            if existing is not None:
                whose = ("this customer" if existing.customer_id == customer_id
                         else "another customer")
                raise AlreadyPresent(f"{name} {serial} is registered at {caller.institution} "
                                     f"for {whose} already")
            reg = rows.insert(tx, institution=caller.institution, serial=serial,
                              customer_id=customer_id, terminal=terminal, operator=operator,
                              now=self.clock(), public_key=key)
            self.audit.record(tx, action=f"{name}.register", target=f"{name}:{serial}",
                              outcome="ok", caller=caller, customer=customer_id,
                              detail={"terminal": terminal, "operator": operator,
                                      "registration": reg.id, "signing_key": bool(key)})
            return reg

        return _unique(self.db, register, f"{name} {serial} is registered at "
                                          f"{caller.institution} already")

    def deregister(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                   operator: str, reason: str) -> BranchRegistration:
        rows = self.rows[check_medium(medium)]
        check_serial(serial)
        validate.customer_ref(customer_id)
        validate.text(operator, "operator_id", required=True)
        validate.text(reason, "reason")
        name = NAMES[medium]
        missing = NOT_REGISTERED.format(name=name, serial=serial,
                                        institution=caller.institution)

        def deregister(tx: Tx) -> BranchRegistration:
            existing = rows.active(tx, caller.institution, serial, lock=True)
            if existing is None or existing.customer_id != customer_id:
                raise NoSuchObject(missing)
            ended = rows.end(tx, existing, self.clock())
            if ended is None:
                raise NoSuchObject(missing)
            self.audit.record(tx, action=f"{name}.deregister", target=f"{name}:{serial}",
                              outcome="ok", caller=caller, customer=customer_id,
                              detail={"operator": operator, "reason": reason,
                                      "registration": existing.id})
            return ended

        return self.db.run(deregister)

    def registrations(self, caller: Caller, medium: MediumKind | None, *, serial: str = "",
                      customer_id: str = "",
                      include_ended: bool = False) -> list[BranchRegistration]:
        media = HELD if medium is None else (check_medium(medium),)
        if not serial and not customer_id:
            raise BadRequest("give a serial or a customer_id")
        if serial:
            check_serial(serial)
        if customer_id:
            validate.customer_ref(customer_id)

        def read(tx: Tx) -> list[BranchRegistration]:
            found = [reg for m in media for reg in self.rows[m].find(
                tx, caller.institution, serial=serial, customer_id=customer_id,
                include_ended=include_ended)]
            return sorted(found, key=lambda r: (r.registered_at, r.id))

        return self.db.run(read, write=False)

    def exemption(self, caller: Caller, medium: MediumKind, serial: str,
                  customer_id: str) -> Exemption:
        rows = self.rows[check_medium(medium)]
        check_serial(serial)
        validate.customer_ref(customer_id)
        reg = self.db.run(lambda tx: rows.active(tx, caller.institution, serial), write=False)
        if reg is None:
            outcome = ExemptionOutcome.NOT_REGISTERED
        elif reg.customer_id != customer_id:
            outcome, reg = ExemptionOutcome.OTHER_CUSTOMER, None
        elif medium is MediumKind.HSM_TOKEN:
            outcome = ExemptionOutcome.EXEMPT
        else:
            outcome = ExemptionOutcome.MEDIUM_NOT_EXEMPT
        return Exemption(outcome, REASONS[outcome], reg)


def _unique(db: Database, fn: Callable[[Tx], T], message: str) -> T:
    """Run ``fn``; a unique-index violation (a racing registration on PostgreSQL, whose row
    lock cannot cover a row that does not exist yet) is AlreadyPresent."""
    try:
        return db.run(fn)
    except Exception as exc:
        if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
            raise AlreadyPresent(message) from None
        raise
