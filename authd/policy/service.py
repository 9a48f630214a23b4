"""Transfer authorisation: one decision per order, with its reasons, on the store.

A decision is one job of the policy's group-commit engine (``authd.otp.engine``): it runs in
one transaction with the decisions committed beside it, under the customer's row lock
(``SELECT ... FOR UPDATE`` on PostgreSQL, the write lock on SQLite). The means presented are
verified inside that transaction through the OTP center and the security-card service, so the
code is used up, the lockout counted and the limit consumed together or not at all, and two
decisions of one customer never overlap on any node: the daily total is exact, the same
idempotency key or an identical order is answered with the first decision, and nothing is
executed twice (EFT art. 12(3)).

Checks run from the cheapest refusal to the verification, so a refusal that needs no medium
(incident list, suspension, restriction, additional authentication, limits) consumes no code,
challenge or limit. Every decision is recorded (the idempotency record, the customer's export)
and audited with the terminal's device information.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum, unique
from typing import TYPE_CHECKING

from authd.audit import AuditLog
from authd.context import Caller, Role
from authd.otp import repository as otp_repo
from authd.policy import repository as repo
from authd.policy.media import CustomerMedia, HeldMedium, MediumKind, MediumState
from authd.policy.settings import PolicySettings
from authd.storage import Database, Tx
from devices.errors import (
    AlreadyPresent,
    BadRequest,
    LimitReached,
    NoSuchObject,
    NotPermitted,
    WrongState,
)
from devices.otp.rules import Outcome as OtpOutcome
from devices.otp.rules import State as OtpState
from devices.policy import corporate
from devices.policy import counters as ctr
from devices.policy import decision as dec
from devices.policy import exemptions as ex
from devices.policy import grades as gr
from devices.policy import inactivity as ina
from devices.policy.calendar import day_of
from devices.policy.decision import Decision, Outcome, Reason, Why
from devices.policy.orders import Order, Purpose
from devices.policy.signatures import signature_valid
from devices.policy.terminals import DeviceInfo, Field, designated_by, incident_keys
from devices.security_card import Outcome as CardOutcome
from devices.token.signing import SignAlgorithm

if TYPE_CHECKING:
    from authd.otp.feature import OtpFeature
    from authd.otp.service import VerifyResult
    from authd.security_card.service import SecurityCardService

YEAR = 365.25 * 86400
PRUNE_EVERY = 1024
# Retention: the audit's class from amount_krw (default, small_transaction at <= 10,000 KRW).
ACTION_DECISION = "policy.transfer"


@unique
class CorporateRole(StrEnum):
    MASTER = "master"  # the master administrator (총괄관리자)
    EMPLOYEE = "employee"


@dataclass(frozen=True)
class OtpMeans:
    serial: str
    code: str


@dataclass(frozen=True)
class CardMeans:
    challenge_id: str
    answer: str


@dataclass(frozen=True)
class SignatureMeans:
    medium: MediumKind  # TOKEN or SMARTCARD
    serial: str
    signature: bytes
    algorithm: SignAlgorithm | None = None


@dataclass(frozen=True)
class TransferRequest:
    order: Order
    device: DeviceInfo
    caller: Caller
    otp: OtpMeans | None = None
    card: CardMeans | None = None
    signature: SignatureMeans | None = None
    additional_done: ex.AdditionalKind | None = None
    corporate_role: CorporateRole | None = None


@dataclass(frozen=True)
class Answered:
    decision_id: str
    decision: Decision
    decided_at: float
    first: Answered | None = None  # a duplicate: the decision first given to this order
    otp_result: VerifyResult | None = None  # a code verified (counted once committed)


@dataclass(frozen=True)
class CustomerView:
    customer: repo.Customer
    held: list[HeldMedium]
    best_grade: gr.Grade | None
    ceilings: dict[gr.Grade, gr.Limits]
    effective: dict[gr.Grade, gr.Limits]
    used_today: int
    day: str
    suspension: ina.Suspension | None
    counters: dict[ctr.InputKind, ctr.Counter]
    terminals: int


@dataclass(frozen=True)
class KindChange:
    """What changing a customer's kind did (``PolicyService.change_kind``)."""

    kind: gr.CustomerKind
    previous: gr.CustomerKind
    changed: bool  # False: it had that kind already, nothing written
    foreign_otps_by_master: list[str]  # other institutions' OTPs the master confirmed
    limits_lowered: bool
    view: CustomerView | None = None


def _medium_refusal(medium: HeldMedium) -> tuple[Why, str]:
    what = {MediumKind.OTP: "OTP", MediumKind.SECURITY_CARD: "security card",
            MediumKind.TOKEN: "security token", MediumKind.SMARTCARD: "smartcard"}[medium.kind]
    return {
        MediumState.LOCKED: (Why.MEDIUM_LOCKED, f"The {what} is locked after too many wrong "
                             "entries; unlock it at a branch with your ID."),
        MediumState.LOST: (Why.MEDIUM_LOST, f"The {what} is reported lost or stolen; it "
                           "cannot be used until the report is withdrawn in person."),
        MediumState.RESTRICTED: (Why.MEDIUM_RESTRICTED, f"The {what} is restricted after "
                                 "3 consecutive wrong answers; a branch must reset it."),
    }.get(medium.state, (Why.MEDIUM_ENDED, f"The {what} can no longer be used."))


NOT_CUSTOMERS = ("The medium presented is not one this customer holds at this institution.")


class PolicyService:
    def __init__(self, db: Database, audit: AuditLog, settings: PolicySettings,
                 media: CustomerMedia, otp: OtpFeature | None,
                 cards: SecurityCardService | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.audit = audit
        self.settings = settings
        self.media = media
        self.otp = otp
        self.cards = cards
        self.clock = clock
        self.grade_limits = settings.grade_limits()
        self.thresholds = settings.thresholds()
        self.rules = settings.inactivity()
        self.exemptions = settings.applied_exemptions()
        self._decided = 0

    # ------------------------------------------------------------------ helpers

    def day(self, now: float) -> str:
        return day_of(now, self.settings.utc_offset_hours)

    def _customer(self, tx: Tx, caller: Caller, customer_id: str, *,
                  lock: bool) -> repo.Customer:
        found = repo.customer(tx, caller.institution, customer_id, lock=lock)
        if found is None:
            raise NoSuchObject(f"no customer {customer_id} at {caller.institution}: a branch "
                               "records the electronic-finance agreement first")
        return found

    def _best_grade(self, c: repo.Customer, held: list[HeldMedium]) -> gr.Grade | None:
        usable = {gr.GradeMedium(m.kind.value) for m in held if m.usable
                  and m.kind in (MediumKind.OTP, MediumKind.SECURITY_CARD)}
        return gr.best_grade(c.kind, usable)

    def _grades_of(self, kind: gr.CustomerKind) -> list[gr.Grade]:
        return [g for m in gr.GradeMedium if (g := gr.grade_for(kind, m)) is not None]

    # ------------------------------------------------------------------ the decision

    def decide(self, tx: Tx, req: TransferRequest) -> Answered:
        """One decision in ``tx`` (a job of the engine). Raises only before it writes."""
        order, caller = req.order, req.caller
        inst, cust = caller.institution, order.customer_id
        now = self.clock()
        keys = [(f.value, v) for f, v in incident_keys(req.device)]
        fingerprint = order.fingerprint()
        window = self.settings.duplicate_window_seconds
        since = now - window if window > 0 and order.purpose is Purpose.TRANSFER else now + 1
        # the customer's media and the presented OTP device (under its row lock) are read
        # with the customer's row: one round trip to the store for every read of the decision
        extra = [self.media.statement(inst, cust)]
        if req.otp is not None and self.otp is not None:
            extra.append(self.otp.verify_statement(tx, req.otp.serial, inst))
        locked = repo.lock_for_decision(tx, inst, cust, self.day(now), keys,
                                        order.idempotency_key, fingerprint, since, extra)
        if locked is None:
            raise NoSuchObject(f"no customer {cust} at {inst}: a branch records the "
                               "electronic-finance agreement first")
        prev = locked.earlier
        if prev is not None and prev.idempotency_key == order.idempotency_key:
            if prev.customer_id != cust or prev.fingerprint != fingerprint:
                raise AlreadyPresent("idempotency_key was used for a different order; use a "
                                     "new key for a new order", reason="KEY_REUSED")
            return self._duplicate(tx, req, prev, Why.SAME_IDEMPOTENCY_KEY, now, record=False)
        if prev is not None:
            return self._duplicate(tx, req, prev, Why.IDENTICAL_ORDER, now, record=True)
        answered = self._evaluate(tx, req, locked, now)
        return self._finish(tx, req, answered.decision, now, answered.otp_result)

    def _evaluate(self, tx: Tx, req: TransferRequest, locked: repo.Locked,
                  now: float) -> Answered:
        order, caller = req.order, req.caller
        inst, cust = caller.institution, order.customer_id
        c = locked.customer
        day = self.day(now)

        def refuse(outcome: Outcome, why: Why, message: str, **kw: object) -> Answered:
            return Answered("", dec.refused(outcome, why, message, day=day, **kw), now)

        if locked.incident_fields:
            return refuse(Outcome.DEVICE_ON_INCIDENT_LIST, Why.INCIDENT_LIST,
                          "This terminal's device information is on the incident list of "
                          "electronic-finance incidents; transfers from it are refused. Use "
                          "another terminal or contact a branch.",
                          extra={"fields": ",".join(locked.incident_fields)})
        suspended = ina.suspension(c.activity, now, self.rules)
        if suspended is not None:
            why = (Why.NOT_REGISTERED_IN_TIME if suspended is ina.Suspension.NOT_REGISTERED
                   else Why.UNUSED)
            return refuse(Outcome.SUSPENDED, why, ina.message(suspended, self.rules))
        if locked.restricted is not None:
            kind = ctr.InputKind(locked.restricted)
            counter = ctr.Counter(kind, self.thresholds[kind], True, self.thresholds[kind])
            return refuse(Outcome.MEDIUM_REFUSED, Why.INPUT_RESTRICTED, counter.message(),
                          extra={"input": kind.value})
        no_cert = ex.no_certificate(order, self.settings.e_commerce_no_certificate_below)
        if order.purpose is Purpose.OWN_ACCOUNT_INQUIRY:
            return Answered("", Decision(Outcome.APPROVED, (Reason(
                Why.NO_CERTIFICATE_NEEDED, "An inquiry of your own accounts needs no "
                "certificate (EFT art. 7(1)1)."),), no_certificate=no_cert, day=day), now)

        held = self.media.held_from(inst, locked.extra_rows[0])
        presented = self._presented(tx, req, c, held)
        if isinstance(presented, Answered):
            return dataclasses.replace(presented, decision=dataclasses.replace(
                presented.decision, day=day))
        medium, grade = presented
        branch_token = False
        if req.signature is not None:
            signed = self._signature(req, held)
            if signed is not None:
                return refuse(*signed)
            # EFT art. 14(1)6 names HSM security tokens; a smartcard's signature is checked
            # alike but exempts nothing (the customer service's CheckExemption agrees)
            branch_token = req.signature.medium is MediumKind.TOKEN

        reasons: list[Reason] = []
        exempt: list[ex.Exemption] = []
        if no_cert is not None:
            reasons.append(Reason(Why.NO_CERTIFICATE_NEEDED, {
                ex.NoCertificate.ARS_ATM: "ARS and ATM transfers need no certificate "
                                          "(EFT art. 7(1)2).",
                ex.NoCertificate.SMALL_E_COMMERCE:
                    f"An electronic-commerce transfer under "
                    f"{self.settings.e_commerce_no_certificate_below:,} KRW needs no "
                    "certificate (EFT art. 7(1)4).",
                ex.NoCertificate.E_MONEY: "Electronic money needs no certificate "
                                          "(EFT art. 7(1)5).",
            }.get(no_cert, "No certificate is needed.")))
        else:
            braille = any(m.kind is MediumKind.SECURITY_CARD and m.braille and m.usable
                          for m in held)
            exempt = ex.exemptions(order, c.agreements, braille_card_user=braille,
                                   branch_token_used=branch_token,
                                   otp_used=medium is not None and medium.kind is MediumKind.OTP)
            exempt = [e for e in exempt if e in self.exemptions]
            # whether the terminal is designated matters only when no exemption applies
            designated = not exempt and any(
                designated_by(t.device, req.device, self.settings.matched_fields())
                for t in (repo.terminals(tx, inst, cust) if locked.terminal_count else ()))
            accepted = self.settings.accepted_additional()
            if ex.additional_required(designated=designated, exempt=exempt,
                                      done=req.additional_done, accepted=accepted):
                return Answered("", Decision(Outcome.ADDITIONAL_AUTHENTICATION_REQUIRED, (Reason(
                    Why.NOT_DESIGNATED, "This terminal is not designated: confirm the transfer "
                    "with additional authentication (" + ", ".join(k.value for k in accepted)
                    + ") (EFT art. 7(2)), or designate the terminal."),),
                    additional_kinds=accepted, day=day), now)
            if exempt:
                reasons.append(Reason(Why.EXEMPT_FROM_ADDITIONAL, "No additional "
                                      "authentication is needed: " + ", ".join(
                                          e.value.replace("_", " ") for e in exempt) + "."))
            elif designated:
                reasons.append(Reason(Why.DESIGNATED_TERMINAL, "The terminal is designated."))
            else:
                reasons.append(Reason(Why.ADDITIONAL_DONE, "Additional authentication "
                                      f"({req.additional_done}) was done."))

        limits = gr.effective(grade, self.grade_limits, c.own_limits, c.contract)
        used = locked.used_today
        over = dec.over_limit(order.amount, limits, used)
        if over is not None:
            return Answered("", Decision(Outcome.OVER_LIMIT, (over,), grade=grade, limits=limits,
                                         used_today=used, exemptions=tuple(exempt),
                                         no_certificate=no_cert, day=day), now)

        otp_result = None
        if req.otp is not None:
            assert self.otp is not None
            otp_result = self.otp.verify_in(tx, serial=req.otp.serial, code=req.otp.code,
                                            caller=caller, read=locked.extra_rows[1])
            failed = self._otp_refusal(otp_result)
            if failed is not None:
                return Answered("", dataclasses.replace(failed, grade=grade, day=day), now,
                                otp_result=otp_result)
        elif req.card is not None:
            assert self.cards is not None
            verdict, _serial = self.cards.verify_in(tx, inst, req.card.challenge_id,
                                                    req.card.answer)
            if not verdict.accepted:
                message = self.cards.message(verdict).text
                if verdict.outcome is CardOutcome.WRONG_ANSWER:
                    outcome, why = Outcome.AUTHENTICATION_FAILED, Why.WRONG_ANSWER
                elif verdict.outcome is CardOutcome.CARD_RESTRICTED:
                    outcome, why = Outcome.MEDIUM_REFUSED, Why.MEDIUM_RESTRICTED
                elif verdict.outcome in (CardOutcome.CARD_REVOKED, CardOutcome.CARD_REPLACED):
                    outcome, why = Outcome.MEDIUM_REFUSED, Why.MEDIUM_ENDED
                else:
                    outcome, why = Outcome.AUTHENTICATION_FAILED, Why.CHALLENGE_UNUSABLE
                return refuse(outcome, why, message, grade=grade,
                              attempts_left=verdict.attempts_left)

        consumed = order.amount
        repo.add_used(tx, inst, cust, day, consumed)
        repo.touch_used(tx, inst, cust, now)
        reasons.insert(0, Reason(Why.WITHIN_LIMITS, (
            f"Approved: {consumed:,} KRW counted; {max(0, limits.daily - used - consumed):,} of "
            f"{limits.daily:,} KRW left today, at most {limits.per_transfer:,} KRW per "
            "transfer.")))
        return Answered("", Decision(Outcome.APPROVED, tuple(reasons), grade=grade,
                                     limits=limits, consumed=consumed, used_today=used + consumed,
                                     exemptions=tuple(exempt), no_certificate=no_cert, day=day),
                        now, otp_result=otp_result)

    def _presented(self, tx: Tx, req: TransferRequest, c: repo.Customer,
                   held: list[HeldMedium]) -> tuple[HeldMedium | None, gr.Grade] | Answered:
        """The grade medium presented, checked against what the customer holds (before any
        code is evaluated), and the grade it gives; or the refusal."""
        kind = c.kind
        now = self.clock()

        def refuse(outcome: Outcome, why: Why, message: str) -> Answered:
            return Answered("", dec.refused(outcome, why, message), now)

        if req.otp is None and req.card is None:
            # No medium presented: only an order that needs no certificate may go on, at the
            # best grade the customer's usable media give.
            usable = {gr.GradeMedium(m.kind.value) for m in held if m.usable
                      and m.kind in (MediumKind.OTP, MediumKind.SECURITY_CARD)}
            best = gr.best_grade(kind, usable)
            if ex.no_certificate(req.order, self.settings.e_commerce_no_certificate_below) \
                    is None or best is None:
                return refuse(Outcome.MEDIUM_REFUSED, Why.NO_MEDIUM,
                              "A transfer needs an OTP code or a security-card answer.")
            return None, best
        if req.otp is not None:
            medium = next((m for m in held if m.kind is MediumKind.OTP
                           and m.serial == req.otp.serial), None)
        else:
            assert req.card is not None and self.cards is not None
            medium = next((m for m in held if m.kind is MediumKind.SECURITY_CARD), None)
            if medium is not None:
                serial = self.cards.challenge_serial(tx, req.caller.institution,
                                                     req.card.challenge_id)
                if serial != medium.serial:
                    medium = None
        if medium is None:
            return refuse(Outcome.MEDIUM_REFUSED, Why.NOT_CUSTOMERS_MEDIUM, NOT_CUSTOMERS)
        if not medium.usable:
            return refuse(Outcome.MEDIUM_REFUSED, *_medium_refusal(medium))
        if medium.kind is MediumKind.OTP and not medium.issued_here and \
                kind is gr.CustomerKind.CORPORATE:
            if req.corporate_role is not CorporateRole.MASTER:
                return refuse(Outcome.MEDIUM_REFUSED, Why.EMPLOYEE_FOREIGN_OTP,
                              "Employees of a corporate customer use this institution's own "
                              "OTP; another institution's OTP is for the master administrator.")
            if not medium.at_branch:
                return refuse(Outcome.MEDIUM_REFUSED, Why.FOREIGN_OTP_NOT_AT_BRANCH,
                              "Another institution's OTP is used by a corporate customer only "
                              "when the master administrator registered it at a branch.")
        grade = gr.grade_for(kind, gr.GradeMedium(medium.kind.value))
        if grade is None:
            return refuse(Outcome.MEDIUM_REFUSED, Why.GRADE_NOT_AVAILABLE,
                          "Corporate transfers need an OTP (corporate safe grade).")
        return medium, grade

    def _signature(self, req: TransferRequest,
                   held: list[HeldMedium]) -> tuple[Outcome, Why, str] | None:
        sig = req.signature
        assert sig is not None
        medium = next((m for m in held if m.kind is sig.medium and m.serial == sig.serial),
                      None)
        if medium is None:
            return (Outcome.MEDIUM_REFUSED, Why.TOKEN_NOT_REGISTERED,
                    "The signing token or smartcard is not registered at a branch of this "
                    "institution for this customer.")
        if not medium.public_key:
            return (Outcome.MEDIUM_REFUSED, Why.TOKEN_NOT_REGISTERED,
                    "The signing token or smartcard was registered at a branch without its "
                    "signing key; register it again with the key.")
        if not signature_valid(medium.public_key, req.order.signing_bytes(), sig.signature,
                               sig.algorithm):
            return (Outcome.AUTHENTICATION_FAILED, Why.BAD_SIGNATURE,
                    "The signature does not verify with the registered key.")
        return None

    @staticmethod
    def _otp_refusal(result: VerifyResult) -> Decision | None:
        o = result.outcome
        if o is OtpOutcome.ACCEPTED:
            return None
        if o is OtpOutcome.WRONG_CODE and result.attempts_left > 0:
            return dec.refused(Outcome.AUTHENTICATION_FAILED, Why.WRONG_CODE, result.message,
                               attempts_left=result.attempts_left)
        if o is OtpOutcome.REPLAYED:
            return dec.refused(Outcome.AUTHENTICATION_FAILED, Why.REPLAYED, result.message)
        why = {OtpOutcome.WRONG_CODE: Why.MEDIUM_LOCKED, OtpOutcome.LOCKED: Why.MEDIUM_LOCKED,
               OtpOutcome.REPORTED_LOST: Why.MEDIUM_LOST}.get(o, Why.MEDIUM_ENDED)
        if o is OtpOutcome.WRONG_CODE:  # this wrong code locked the device
            return dec.refused(Outcome.AUTHENTICATION_FAILED, Why.WRONG_CODE, result.message,
                               attempts_left=0)
        return dec.refused(Outcome.MEDIUM_REFUSED, why, result.message)

    def _duplicate(self, tx: Tx, req: TransferRequest, first: repo.DecisionRow, why: Why,
                   now: float, *, record: bool) -> Answered:
        original = Answered(first.id, dec.from_record(first.decision), first.decided_at)
        message = ("This order was received before: the first decision stands and the order "
                   "is not executed again (EFT art. 12(3)).")
        d = dec.refused(Outcome.DUPLICATE, why, message, day=self.day(now),
                        extra={"first_decision_id": first.id})
        if record:  # a new key for an order already approved: answer it the same way again
            answered = self._finish(tx, req, d, now, None)
            return dataclasses.replace(answered, first=original)
        self._audit(tx, req, first.id, d)
        return Answered(first.id, d, now, first=original)

    def _finish(self, tx: Tx, req: TransferRequest, d: Decision, now: float,
                otp_result: VerifyResult | None) -> Answered:
        decision_id = uuid.uuid4().hex
        order = req.order
        small = order.amount <= self.settings.small_transfer_krw
        years = self.settings.small_retention_years if small else self.settings.retention_years
        row = repo.DecisionRow(decision_id, order.customer_id, order.idempotency_key,
                               order.fingerprint(), d.outcome.value, order.amount, d.consumed,
                               d.day, None, dec.to_record(d), req.device.as_dict(), now)
        repo.insert_decision(tx, req.caller.institution, row, now + years * YEAR)
        self._audit(tx, req, decision_id, d)
        self._decided += 1
        if self._decided % PRUNE_EVERY == 0:
            repo.prune_decisions(tx, now)
        return Answered(decision_id, d, now, otp_result=otp_result)

    def _audit(self, tx: Tx, req: TransferRequest, decision_id: str, d: Decision) -> None:
        order = req.order
        self.audit.record(tx, action=ACTION_DECISION, target=f"customer:{order.customer_id}",
                          customer=order.customer_id,
                          outcome=d.outcome.value, caller=req.caller, detail={
                              "decision_id": decision_id, "customer_id": order.customer_id,
                              "amount_krw": order.amount, "consumed_krw": d.consumed,
                              "channel": order.channel.value, "receiving": order.receiving.value,
                              "idempotency_key": order.idempotency_key,
                              "reasons": [r.why.value for r in d.reasons],
                              "grade": d.grade.value if d.grade else "",
                              "device": req.device.as_dict()})

    # ------------------------------------------------------------------ after the decision

    def cancel(self, caller: Caller, decision_id: str, reason: str) -> repo.DecisionRow:
        """The backend did not execute an approved transfer: give back what it consumed."""

        def run(tx: Tx) -> repo.DecisionRow:
            found = repo.decision_by_id(tx, caller.institution, decision_id)
            if found is None:
                raise NoSuchObject(f"no decision {decision_id} at {caller.institution}")
            self._customer(tx, caller, found.customer_id, lock=True)
            row = repo.decision_by_id(tx, caller.institution, decision_id, lock=True)
            assert row is not None
            if row.outcome != Outcome.APPROVED.value:
                raise NotPermitted("only an approved transfer can be cancelled",
                                   reason="NOT_APPROVED")
            if row.released_at is not None:
                return row
            now = self.clock()
            if row.consumed:
                repo.add_used(tx, caller.institution, row.customer_id, row.day, -row.consumed)
            repo.release(tx, caller.institution, decision_id, now)
            self.audit.record(tx, action="policy.transfer_cancelled",
                              target=f"customer:{row.customer_id}",
                              customer=row.customer_id, outcome="released",
                              caller=caller, detail={"decision_id": decision_id,
                                                     "amount_krw": row.amount,
                                                     "released_krw": row.consumed,
                                                     "reason": reason})
            return dataclasses.replace(row, released_at=now)

        return self.db.run(run)

    def explain(self, caller: Caller, decision_id: str) -> repo.DecisionRow:
        row = self.db.run(lambda tx: repo.decision_by_id(tx, caller.institution, decision_id),
                          write=False)
        if row is None:
            raise NoSuchObject(f"no decision {decision_id} at {caller.institution}")
        return row

    # ------------------------------------------------------------------ customers

    def setup(self, caller: Caller, customer_id: str, kind: gr.CustomerKind,
              agreements: ex.Agreements, operator: str, *,
              master_administrator: bool = False) -> CustomerView:
        """A branch records the electronic-finance agreement (the customer in person). A
        corporate customer with other institutions' OTP devices registered for it already
        meets the corporate master rule first (``corporate.setup_refusal``):
        ``master_administrator``, the teller checked that its master administrator is here
        with the devices registered at a branch."""
        now = self.clock()

        def run(tx: Tx) -> None:
            repo.serialize_customer(tx, caller.institution, customer_id)
            if repo.customer(tx, caller.institution, customer_id, lock=True) is not None:
                raise AlreadyPresent(f"customer {customer_id} has an agreement at "
                                     f"{caller.institution} already")
            foreign = self._foreign_otps(tx, caller.institution, customer_id) \
                if kind is gr.CustomerKind.CORPORATE else []
            why = corporate.setup_refusal(foreign, master_administrator=master_administrator)
            if why is not None:
                raise WrongState(why, reason="CORPORATE_MASTER_RULE", metadata={
                    "serials": ",".join(f.serial for f in foreign[:100])})
            repo.insert_customer(tx, repo.Customer(
                caller.institution, customer_id, kind, ina.Activity(now, 0.0, 0.0, 0.0),
                agreements, None, None, now))
            self.audit.record(tx, action="policy.agreement", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome="recorded", caller=caller,
                              detail={"kind": kind.value, "operator": operator,
                                      **{k: v for k, v in dataclasses.asdict(agreements).items()},
                                      **({"foreign_otps_by_master": [f.serial for f in foreign]}
                                         if foreign else {})})

        self.db.run(run)
        return self.view(caller, customer_id)

    def change_kind(self, caller: Caller, customer_id: str, kind: gr.CustomerKind,
                    operator: str, *, master_administrator: bool = False,
                    reason: str = "") -> KindChange:
        """A branch makes the institution's customer personal or corporate (the customer, or
        its representative, in person). To corporate, the other institutions' OTP devices
        registered for it already meet the corporate master rule exactly as at a corporate
        setup (``corporate.setup_refusal``), under the same lock as the registrations. No
        registration changes: they are the customer's media whatever its kind; what the kind
        changes is what the rules make of them (a corporate customer's grade comes from an
        OTP only, its other institutions' OTPs are its master administrator's). A contract is
        of one kind's grade and must be ended first; own limits above the new kind's highest
        maximum are lowered to it."""
        out: list[KindChange] = []

        def run(tx: Tx) -> None:
            repo.serialize_customer(tx, caller.institution, customer_id)
            c = self._customer(tx, caller, customer_id, lock=True)
            if c.kind is kind:
                out.append(KindChange(c.kind, c.kind, False, [], False))
                return
            if c.contract is not None:
                raise WrongState(
                    f"customer {customer_id} has a recorded contract ({c.contract.reference}) "
                    f"raising the {c.contract.grade.value} maximum, a grade a {kind.value} "
                    "customer does not have: end the contract first (RecordContract without "
                    "a reference), change the kind, then record a contract for the new "
                    "grade if one is agreed", reason="CONTRACT_RECORDED")
            foreign = (self._foreign_otps(tx, caller.institution, customer_id)
                       if kind is gr.CustomerKind.CORPORATE else [])
            why = corporate.setup_refusal(foreign, master_administrator=master_administrator,
                                          changing=True)
            if why is not None:
                raise WrongState(why, reason="CORPORATE_MASTER_RULE", metadata={
                    "serials": ",".join(f.serial for f in foreign[:100])})
            top = self._highest(kind)
            own = c.own_limits
            lowered = own is not None and not own.within(top)
            if own is not None and lowered:
                own = own.capped(top)
            now = self.clock()
            repo.update_customer(tx, dataclasses.replace(c, kind=kind, own_limits=own,
                                                         updated_at=now))
            confirmed = [f.serial for f in foreign]
            detail: dict[str, object] = {"kind": kind.value, "previous_kind": c.kind.value,
                                         "operator": operator, "reason": reason}
            if confirmed:
                detail["foreign_otps_by_master"] = confirmed
            if lowered and c.own_limits is not None and own is not None:
                detail["own_limits_before"] = [c.own_limits.per_transfer, c.own_limits.daily]
                detail["own_limits"] = [own.per_transfer, own.daily]
            self.audit.record(tx, action="policy.kind_changed",
                              target=f"customer:{customer_id}", customer=customer_id,
                              outcome="changed", caller=caller, detail=detail)
            out.append(KindChange(kind, c.kind, True, confirmed, lowered))

        self.db.run(run)
        return dataclasses.replace(out[0], view=self.view(caller, customer_id))

    def _highest(self, kind: gr.CustomerKind) -> gr.Limits:
        """The highest maximum of the grades a customer of ``kind`` may have."""
        limits = [self.grade_limits[g] for g in self._grades_of(kind)]
        return gr.Limits(max(x.per_transfer for x in limits), max(x.daily for x in limits))

    @staticmethod
    def _foreign_otps(tx: Tx, institution: str, customer_id: str) -> list[corporate.ForeignOtp]:
        """Other institutions' OTP devices registered for the customer here and not ended."""
        return [corporate.ForeignOtp(d.serial, d.registration.channel)
                for d in otp_repo.registered_for(tx, institution, customer_id)
                if d.issuer != institution
                and d.state not in (OtpState.REPLACED, OtpState.EXPIRED)]

    def set_agreements(self, caller: Caller, customer_id: str, agreements: ex.Agreements,
                       operator: str) -> CustomerView:
        def run(tx: Tx) -> None:
            c = self._customer(tx, caller, customer_id, lock=True)
            repo.update_customer(tx, dataclasses.replace(c, agreements=agreements,
                                                         updated_at=self.clock()))
            self.audit.record(tx, action="policy.agreements", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome="changed", caller=caller,
                              detail={"operator": operator, **dataclasses.asdict(agreements)})

        self.db.run(run)
        return self.view(caller, customer_id)

    def register_online(self, caller: Caller, customer_id: str) -> CustomerView:
        """The customer registered for internet banking (within the days after the
        agreement)."""

        def run(tx: Tx) -> None:
            c = self._customer(tx, caller, customer_id, lock=True)
            now = self.clock()
            if c.activity.registered_at:
                raise AlreadyPresent(f"customer {customer_id} is registered already")
            suspended = ina.suspension(c.activity, now, self.rules)
            if suspended is not None:
                raise NotPermitted(ina.message(suspended, self.rules), reason="SUSPENDED")
            repo.update_customer(tx, dataclasses.replace(
                c, activity=dataclasses.replace(c.activity, registered_at=now), updated_at=now))
            self.audit.record(tx, action="policy.registered", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome="registered", caller=caller)

        self.db.run(run)
        return self.view(caller, customer_id)

    def view(self, caller: Caller, customer_id: str) -> CustomerView:
        return self.db.run(lambda tx: self.view_in(tx, caller, customer_id), write=False)

    def view_in(self, tx: Tx, caller: Caller, customer_id: str) -> CustomerView:
        c = self._customer(tx, caller, customer_id, lock=False)
        now = self.clock()
        held = self.media.held(tx, caller.institution, customer_id)
        grades = self._grades_of(c.kind)
        day = self.day(now)
        return CustomerView(
            c, held, self._best_grade(c, held),
            {g: gr.ceiling(g, self.grade_limits, c.contract) for g in grades},
            {g: gr.effective(g, self.grade_limits, c.own_limits, c.contract) for g in grades},
            repo.used_on(tx, caller.institution, customer_id, day), day,
            ina.suspension(c.activity, now, self.rules),
            repo.counters(tx, caller.institution, customer_id, self.thresholds),
            len(repo.terminals(tx, caller.institution, customer_id)))

    def set_limits(self, caller: Caller, customer_id: str, wanted: gr.Limits,
                   operator: str) -> CustomerView:
        """Lower online; raise at a branch, up to the best grade's maximum (or a contract)."""
        at_branch = caller.role is Role.BRANCH

        def run(tx: Tx) -> None:
            c = self._customer(tx, caller, customer_id, lock=True)
            held = self.media.held(tx, caller.institution, customer_id)
            grade = self._best_grade(c, held) or self._grades_of(c.kind)[0]
            top = gr.ceiling(grade, self.grade_limits, c.contract)
            current = c.own_limits or top
            gr.check_change(current, wanted, top, at_branch=at_branch)
            repo.update_customer(tx, dataclasses.replace(c, own_limits=wanted,
                                                         updated_at=self.clock()))
            self.audit.record(tx, action="policy.limits", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome="changed", caller=caller, detail={
                                  "operator": operator, "per_transfer_krw": wanted.per_transfer,
                                  "daily_krw": wanted.daily,
                                  "before": [current.per_transfer, current.daily]})

        self.db.run(run)
        return self.view(caller, customer_id)

    def record_contract(self, caller: Caller, customer_id: str, contract: gr.Contract | None,
                        operator: str) -> CustomerView:
        """A branch records (or ends, ``None``) a contract above a grade's maximum."""

        def run(tx: Tx) -> None:
            c = self._customer(tx, caller, customer_id, lock=True)
            if contract is not None:
                if contract.grade not in self._grades_of(c.kind):
                    raise BadRequest(f"a {c.kind.value} customer has no grade "
                                     f"{contract.grade.value}", field="grade")
                contract.ceiling.check("contract")
            own = c.own_limits
            if contract is None and own is not None:
                held = self.media.held(tx, caller.institution, customer_id)
                grade = self._best_grade(c, held) or self._grades_of(c.kind)[0]
                own = own.capped(self.grade_limits[grade])
            repo.update_customer(tx, dataclasses.replace(c, contract=contract, own_limits=own,
                                                         updated_at=self.clock()))
            self.audit.record(tx, action="policy.contract", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome="recorded" if contract else "ended", caller=caller,
                              detail={"operator": operator,
                                      "reference": contract.reference if contract else "",
                                      "grade": contract.grade.value if contract else "",
                                      "per_transfer_krw": contract.ceiling.per_transfer
                                      if contract else 0,
                                      "daily_krw": contract.ceiling.daily if contract else 0})

        self.db.run(run)
        return self.view(caller, customer_id)

    # ------------------------------------------------------------------ terminals

    def designate(self, caller: Caller, customer_id: str, label: str, device: DeviceInfo,
                  additional_done: ex.AdditionalKind | None) -> repo.Terminal:
        """Designate a terminal: at a branch, or online after additional authentication."""
        online = caller.role is not Role.BRANCH
        if online and additional_done not in self.settings.accepted_additional():
            raise NotPermitted("a terminal is designated online only after additional "
                               "authentication (" + ", ".join(self.settings.additional_kinds)
                               + "); or at a branch", reason="ADDITIONAL_AUTHENTICATION_NEEDED")
        fields = self.settings.matched_fields()
        if not device.present(fields):
            raise BadRequest("the device information must hold at least one of "
                             + ", ".join(f.value for f in fields), field="device")

        def run(tx: Tx) -> repo.Terminal:
            self._customer(tx, caller, customer_id, lock=True)
            if repo.incidents_matching(tx, [(f.value, v) for f, v in incident_keys(device)]):
                raise NotPermitted("this terminal's device information is on the incident "
                                   "list; it cannot be designated", reason="INCIDENT_LIST")
            existing = repo.terminals(tx, caller.institution, customer_id)
            if any(designated_by(t.device, device, fields) for t in existing):
                raise AlreadyPresent("this terminal is designated already")
            if len(existing) >= self.settings.max_terminals_per_customer:
                raise LimitReached(f"a customer keeps at most "
                                   f"{self.settings.max_terminals_per_customer} designated "
                                   "terminals; remove one first")
            channel = "branch" if caller.role is Role.BRANCH else "online"
            t = repo.insert_terminal(tx, caller.institution, customer_id, label, device,
                                     channel, self.clock())
            self.audit.record(tx, action="policy.terminal_designated",
                              target=f"customer:{customer_id}",
                              customer=customer_id, outcome="designated",
                              caller=caller, detail={"terminal_id": t.id, "channel": channel,
                                                     "label": label,
                                                     "device": device.as_dict(),
                                                     "additional": additional_done or ""})
            return t

        return self.db.run(run)

    def terminals(self, caller: Caller, customer_id: str) -> list[repo.Terminal]:
        def run(tx: Tx) -> list[repo.Terminal]:
            self._customer(tx, caller, customer_id, lock=False)
            return repo.terminals(tx, caller.institution, customer_id)

        return self.db.run(run, write=False)

    def remove_terminal(self, caller: Caller, customer_id: str, terminal_id: str,
                        reason: str) -> None:
        def run(tx: Tx) -> None:
            self._customer(tx, caller, customer_id, lock=True)
            if not repo.delete_terminal(tx, caller.institution, customer_id, terminal_id):
                raise NoSuchObject(f"customer {customer_id} has no designated terminal "
                                   f"{terminal_id}")
            self.audit.record(tx, action="policy.terminal_removed",
                              target=f"customer:{customer_id}",
                              customer=customer_id, outcome="removed",
                              caller=caller, detail={"terminal_id": terminal_id,
                                                     "reason": reason})

        self.db.run(run)

    # ------------------------------------------------------------------ input counters

    def report_input(self, caller: Caller, customer_id: str, kind: ctr.InputKind,
                     ok: bool) -> ctr.Counter:
        def run(tx: Tx) -> ctr.Counter:
            self._customer(tx, caller, customer_id, lock=True)
            before = repo.counters(tx, caller.institution, customer_id, self.thresholds)[kind]
            after = ctr.after_input(before, ok)
            if after != before:
                repo.put_counter(tx, caller.institution, customer_id, after, self.clock())
            outcome = ("ignored_restricted" if before.restricted else
                       "accepted" if ok else "restricted" if after.restricted else "wrong")
            self.audit.record(tx, action="policy.input", target=f"customer:{customer_id}",
                              customer=customer_id,
                              outcome=outcome, caller=caller,
                              detail={"input": kind.value, "failures": after.failures})
            return after

        return self.db.run(run)

    def unlock_input(self, caller: Caller, customer_id: str, kind: ctr.InputKind, *,
                     password_correct: bool, identity_checked: bool,
                     operator: str) -> ctr.Counter:
        def run(tx: Tx) -> ctr.Counter:
            c = self._customer(tx, caller, customer_id, lock=True)
            ctr.check_unlock(kind, c.kind, at_branch=caller.role is Role.BRANCH,
                             password_correct=password_correct,
                             identity_checked=identity_checked)
            before = repo.counters(tx, caller.institution, customer_id, self.thresholds)[kind]
            after = ctr.Counter(kind, 0, False, before.threshold)
            repo.put_counter(tx, caller.institution, customer_id, after, self.clock())
            self.audit.record(tx, action="policy.input_unlocked",
                              target=f"customer:{customer_id}",
                              customer=customer_id, outcome="unlocked",
                              caller=caller, detail={"input": kind.value, "operator": operator,
                                                     "failures_before": before.failures,
                                                     "restricted_before": before.restricted})
            return after

        return self.db.run(run)

    # ------------------------------------------------------------------ inactivity

    def lift(self, caller: Caller, customer_id: str, channel: ina.LiftChannel, *,
             strong_login: bool, age: int | None, operator: str) -> CustomerView:
        if (channel is ina.LiftChannel.BRANCH) != (caller.role is Role.BRANCH):
            raise NotPermitted("a branch lifts a suspension at the branch; a backend online or "
                               "through the call centre")

        def run(tx: Tx) -> None:
            c = self._customer(tx, caller, customer_id, lock=True)
            now = self.clock()
            suspended = ina.suspension(c.activity, now, self.rules)
            if suspended is None:
                raise NotPermitted(f"internet banking of customer {customer_id} is not "
                                   "suspended", reason="NOT_SUSPENDED")
            ina.check_lift(channel, c.kind, strong_login=strong_login, age=age,
                           rules=self.rules)
            activity = dataclasses.replace(
                c.activity, lifted_at=now,
                registered_at=c.activity.registered_at or now)
            repo.update_customer(tx, dataclasses.replace(c, activity=activity, updated_at=now))
            self.audit.record(tx, action="policy.suspension_lifted",
                              target=f"customer:{customer_id}",
                              customer=customer_id, outcome="lifted", caller=caller,
                              detail={"channel": channel.value, "suspension": suspended.value,
                                      "operator": operator})

        self.db.run(run)
        return self.view(caller, customer_id)

    # ------------------------------------------------------------------ incident list

    def report_incident(self, caller: Caller, device: DeviceInfo,
                        reason: str) -> list[repo.Incident]:
        """List every identifier of ``device`` (IP, MAC, HDD serial, USB serial, phone
        identifier) as the caller's entry; one the caller listed already stays as it is. Every
        institution keeps its own entries: another's withdrawal leaves this one in force."""
        keys = incident_keys(device)
        if not keys:
            raise BadRequest("the device information must hold an IP address, MAC address, "
                             "HDD serial, USB serial or phone identifier", field="device")

        def run(tx: Tx) -> list[repo.Incident]:
            now, out = self.clock(), []
            for f, v in keys:
                found = repo.live_incident(tx, f.value, v, caller.institution)
                if found is None:
                    found = repo.insert_incident(tx, f.value, v, caller.institution, reason,
                                                 now)
                    self.audit.record(tx, action="policy.incident_reported",
                                      target=f"incident:{found.id}", outcome="listed",
                                      caller=caller, detail={"field": f.value, "value": v,
                                                             "reason": reason})
                out.append(found)
            return out

        return self.db.run(run)

    def check_device(self, tx: Tx, device: DeviceInfo) -> list[Field]:
        """The fields of ``device`` on the incident list (none: not listed). For any feature
        that must refuse a listed terminal (certificate issuance, CA art. 6(4)4)."""
        hits = repo.incidents_matching(tx, [(f.value, v) for f, v in incident_keys(device)])
        return sorted({Field(h.field) for h in hits}, key=lambda f: f.value)

    def withdraw_incident(self, caller: Caller, incident_id: str, reason: str) -> None:
        def run(tx: Tx) -> None:
            found = repo.incident_by_id(tx, incident_id)
            # another institution's entry looks like no entry (it is theirs to withdraw)
            if found is None or (found.reported_by != caller.institution
                                 and caller.role is not Role.ADMIN):
                raise NoSuchObject(f"no incident {incident_id} reported by "
                                   f"{caller.institution}")
            repo.withdraw_incident(tx, incident_id, self.clock())
            self.audit.record(tx, action="policy.incident_withdrawn",
                              target=f"incident:{incident_id}", outcome="withdrawn",
                              caller=caller, detail={"reason": reason})

        self.db.run(run)

    def incidents(self, caller: Caller) -> list[repo.Incident]:
        return self.db.run(lambda tx: repo.incidents_reported_by(tx, caller.institution),
                           write=False)

    # ------------------------------------------------------------------ export

    def export(self, caller: Caller, customer_id: str, since: float, until: float
               ) -> tuple[list[repo.DecisionRow], list[repo.Terminal]]:
        """A customer's own records (EFT art. 21): every decision with the terminal's device
        information, and the designated terminals."""

        def run(tx: Tx) -> tuple[list[repo.DecisionRow], list[repo.Terminal]]:
            self._customer(tx, caller, customer_id, lock=False)
            return (repo.decisions_of(tx, caller.institution, customer_id, since, until,
                                      self.settings.export_max),
                    repo.terminals(tx, caller.institution, customer_id))

        return self.db.run(run, write=False)
