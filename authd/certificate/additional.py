"""The proof of additional authentication (FAQ; CA art. 2(8), 6(4)5) behind one interface.

``AdditionalAuthenticator.verify`` answers whether a proof authenticates the customer for a
purpose. authd checks the one-time number a customer registered at a branch itself
(:class:`BranchNumbers`); SMS and ARS codes are the bank's channels (the policy feature will
plug its verifier in here), and until one is configured they are refused with that reason.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from authd.app import App
from authd.certificate import repository as repo
from authd.storage import Tx
from devices.certificate.additional import MAX_ATTEMPTS, Proof, ProofKind, Purpose, check_number
from devices.certificate.additional import new_number as make_number
from devices.errors import NotPermitted, WrongState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str  # what to tell the customer


class AdditionalAuthenticator(Protocol):
    def verify(self, institution: str, customer_ref: str, proof: Proof,
               purpose: Purpose) -> Outcome: ...


def _aad(institution: str, customer_ref: str) -> bytes:
    return f"certificate-otn\x00{institution}\x00{customer_ref}".encode()


class BranchNumbers:
    """One-time numbers a teller registers for a customer: sealed at rest, one live per
    customer, void once used, after 3 wrong entries or when expired."""

    def __init__(self, app: App, digits: int, valid_days: float,
                 clock: Callable[[], dt.datetime]) -> None:
        self.app, self.digits, self.valid = app, digits, dt.timedelta(days=valid_days)
        self.clock = clock

    def issue(self, institution: str, customer_ref: str, operator: str) -> tuple[str, dt.datetime]:
        number = make_number(self.digits)
        sealed = self.app.secrets.seal(number.encode(), _aad(institution, customer_ref))
        now = self.clock()
        expires = now + self.valid

        def store(tx: Tx) -> None:
            repo.replace_number(tx, institution, customer_ref, sealed, operator, now, expires)
            self.app.audit.record(tx, action="certificate.one_time_number",
                                  target=f"customer:{customer_ref}", outcome="issued",
                                  detail={"operator": operator,
                                          "expires_at": expires.isoformat()})

        self.app.db.run(store)
        return number, expires

    def verify(self, institution: str, customer_ref: str, value: str) -> Outcome:
        check_number(value, self.digits)
        now = self.clock()

        def check(tx: Tx) -> Outcome:
            row = repo.live_number(tx, institution, customer_ref)
            if row is None:
                return Outcome(False, "no one-time number is registered for this customer; "
                                      "register one at a branch")
            if now >= row.expires_at:
                repo.void_number(tx, row.id)
                return Outcome(False, "the one-time number expired; register a new one at a "
                                      "branch")
            expected = self.app.secrets.open(row.sealed, _aad(institution, customer_ref))
            if hmac.compare_digest(expected, value.encode()):
                repo.number_used(tx, row.id, now)
                return Outcome(True, "one-time number accepted")
            failures = repo.number_failed(tx, row.id, MAX_ATTEMPTS)
            left = max(0, MAX_ATTEMPTS - failures)
            if left == 0:
                return Outcome(False, "wrong one-time number; it is now void: register a new "
                                      "one at a branch")
            return Outcome(False, f"wrong one-time number, {left} attempt(s) left")

        return self.app.db.run(check)


class AdditionalAuthentication:
    """The authenticator authd uses: branch numbers here, SMS and ARS by a plugged verifier."""

    def __init__(self, numbers: BranchNumbers,
                 channels: AdditionalAuthenticator | None = None) -> None:
        self.numbers = numbers
        self.channels = channels

    def verify(self, institution: str, customer_ref: str, proof: Proof,
               purpose: Purpose) -> Outcome:
        if proof.kind is ProofKind.BRANCH_NUMBER:
            return self.numbers.verify(institution, customer_ref, proof.value)
        if self.channels is None:
            raise WrongState(f"{proof.kind.value.upper()} additional authentication is not "
                             "available on this node; use a one-time number registered at a "
                             "branch", reason="ADDITIONAL_AUTHENTICATION_UNAVAILABLE")
        return self.channels.verify(institution, customer_ref, proof, purpose)


def require(outcome: Outcome) -> None:
    if not outcome.ok:
        raise NotPermitted(f"additional authentication failed: {outcome.message} "
                           "(CA art. 6(4)5)", reason="ADDITIONAL_AUTHENTICATION_FAILED")
