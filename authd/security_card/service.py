"""Security-card operations on the store: issue, print, challenge, verify, lifecycle.

Blocking code: the servicer runs what prints or embosses through ``app.run_blocking`` (the
device threads) and the rest through ``app.run_store`` (the store threads, with a deadline).
The audit record of every change is written in the change's own transaction.
"""

from __future__ import annotations

import secrets as pysecrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authd import validate
from authd.audit import AuditLog
from authd.secrets import SecretBox
from authd.security_card import repository as repo
from authd.security_card.output import STATE_PENDING, PrintOutcome
from authd.security_card.settings import SecurityCardSettings
from authd.storage import Database, Tx
from devices.errors import (
    AlreadyPresent,
    BadRequest,
    NoSuchObject,
    Unreachable,
    WrongState,
)
from devices.security_card import (
    CardState,
    Challenge,
    ChallengeState,
    Outcome,
    SecurityCard,
    Verdict,
    challenge_text,
    check_replace,
    check_reprint,
    check_reset,
    check_revoke,
    decide,
    expected_answer,
    is_challenge_id,
    new_challenge,
    new_serial,
    outcome_text,
    validate_answer_format,
    validate_serial,
)
from devices.security_card.braille import LAYOUTS, BrailleCardLayout, BrailleText
from devices.security_card.printed import printed_card_job
from devices.security_card.random import RandomBytes

MAX_REASON = 200
PRUNE_EVERY = 256
PRUNE_AFTER_SECONDS = 24 * 3600.0

ACTION_ISSUE = "security_card.issue"
ACTION_REPLACE = "security_card.replace"
ACTION_PRINT = "security_card.print"
ACTION_REPRINT = "security_card.reprint"
ACTION_REVOKE = "security_card.revoke"
ACTION_RESET = "security_card.reset"
ACTION_CHALLENGE = "security_card.challenge"
ACTION_VERIFY = "security_card.verify"


@dataclass(frozen=True)
class Prepared:
    """A card's print job, released to the device that prints it (it holds the codes)."""

    card: repo.CardRow
    job: bytes = field(repr=False)
    masked_preview: str
    masked_svg: str

    @property
    def job_name(self) -> str:
        return f"security-card-{self.card.serial}"


@dataclass(frozen=True)
class StartedChallenge:
    challenge: Challenge
    code_digits: int
    braille_card: bool
    prompt: BrailleText


@dataclass(frozen=True)
class Verified:
    verdict: Verdict
    serial: str
    message: BrailleText


@dataclass(frozen=True)
class Holder:
    customer_id: str
    card: repo.CardRow | None

    @property
    def braille_card_user(self) -> bool:
        return self.card is not None and self.card.braille and self.card.live


def codes_aad(serial: str) -> bytes:
    return f"authd.security_card.codes.v1:{serial}".encode()


def validate_reason(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise BadRequest(f"reason must be at most {MAX_REASON} characters")
    return reason


class SecurityCardService:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        audit: AuditLog,
        settings: SecurityCardSettings,
        braille: BrailleCardLayout | None,
        clock: Callable[[], float] = time.time,
        random_bytes: RandomBytes = pysecrets.token_bytes,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.audit = audit
        self.settings = settings
        self.braille = braille
        self.clock = clock
        self.random_bytes = random_bytes
        self._challenges = 0

    # -- helpers --------------------------------------------------------------------------
    def _layout(self, layout: str | None) -> str:
        name = layout or self.settings.default_layout
        if name not in LAYOUTS:
            raise BadRequest("layout must be 'card' or 'page'")
        return name

    def _braille_layout(self) -> BrailleCardLayout:
        if self.braille is None:
            raise Unreachable("braille translation (liblouis) is not available at this node")
        return self.braille

    def _card_for(self, tx: Tx, institution: str, serial: str, lock: bool = False) -> repo.CardRow:
        validate_serial(serial)
        row = repo.get_card(tx, serial, lock=lock)
        if row is None or row.institution != institution:
            raise NoSuchObject(f"no security card {serial}")
        return row

    def _read_card(self, institution: str, serial: str) -> repo.CardRow:
        return self.db.run(lambda tx: self._card_for(tx, institution, serial), write=False)

    def _open_codes(self, row: repo.CardRow) -> SecurityCard:
        plain = self.secrets.open(row.sealed_codes, codes_aad(row.serial))
        return SecurityCard.from_codes_bytes(row.serial, plain, row.spec)

    def _render(self, card: SecurityCard, braille: bool, layout: str) -> bytes:
        if braille:
            return self._braille_layout().document(card, layout).to_brf()
        return printed_card_job(card)

    def _text(self, text: str) -> BrailleText:
        if self.braille is None:
            return BrailleText(text, "", "")
        return self.braille.text(text)

    def _new_card(
        self, institution: str, customer_id: str, braille: bool, layout: str, replaces: str
    ) -> tuple[SecurityCard, repo.CardRow]:
        serial = new_serial(self.random_bytes)
        card = SecurityCard.generate(serial, self.settings.card_spec, self.secrets.random)
        now = self.clock()
        row = repo.CardRow(
            serial=serial,
            institution=institution,
            customer_id=customer_id,
            medium=repo.MEDIUM_BRAILLE if braille else repo.MEDIUM_PRINTED,
            layout=layout if braille else "",
            state=CardState.ACTIVE,
            failures=0,
            code_count=len(card.codes),
            code_digits=card.spec.code_digits,
            sealed_codes=self.secrets.seal(card.codes_bytes(), codes_aad(serial)),
            replaces=replaces,
            replaced_by="",
            print_count=0,
            last_print_state=STATE_PENDING,
            issued_at=now,
            updated_at=now,
        )
        return card, row

    def _masked(self, card: SecurityCard, braille: bool, layout: str,
                include_svg: bool) -> tuple[str, str]:
        if not braille:
            return "", ""
        doc = self._braille_layout().document(card, layout, masked=True)
        return doc.preview(), doc.svg(f"security card {card.serial}") if include_svg else ""

    def record_print(self, institution: str, serial: str, outcome: PrintOutcome, *,
                     reprint: bool = False, reason: str = "") -> repo.CardRow:
        """Record how the print of a released job went (the device's node tells)."""
        validate_reason(reason)

        def record(tx: Tx) -> repo.CardRow:
            row = self._card_for(tx, institution, serial, lock=True)
            repo.record_print(tx, row.serial, outcome.state, outcome.delivered, self.clock())
            detail: dict[str, object] = {
                "device": outcome.device,
                "job_id": outcome.job_id,
                "failure": outcome.failure,
                "pages": outcome.pages,
                "medium": row.medium,
            }
            if reprint:
                detail["reprint"] = True
            if reason:
                detail["reason"] = reason
            self.audit.record(tx, action=ACTION_PRINT, target=row.serial, outcome=outcome.state,
                              detail=detail)
            return self._card_for(tx, institution, serial)

        return self.db.run(record)

    # -- issue, replace, reprint: the codes are generated and sealed here, and the print job
    # is released to the caller's printer or embosser (at a branch, or this node's own) --------
    def prepare_issue(self, institution: str, customer_id: str, braille: bool,
                      layout: str | None, include_svg: bool = False) -> Prepared:
        validate.customer_ref(customer_id)
        layout_name = self._layout(layout)
        card, row = self._new_card(institution, customer_id, braille, layout_name, "")
        job = self._render(card, braille, layout_name)
        preview, svg = self._masked(card, braille, layout_name, include_svg)

        def store(tx: Tx) -> None:
            if repo.live_card_for(tx, institution, customer_id) is not None:
                raise AlreadyPresent(
                    f"customer {customer_id} already holds a live security card; replace it"
                )
            repo.insert_card(tx, row)
            self.audit.record(tx, action=ACTION_ISSUE, target=row.serial, outcome="issued",
                              customer=customer_id,
                              detail={"medium": row.medium, "layout": row.layout,
                                      "code_count": row.code_count})

        _run_unique(self.db, store, f"customer {customer_id} already holds a live security card")
        return Prepared(self._read_card(institution, row.serial), job, preview, svg)

    def prepare_replace(self, institution: str, serial: str, braille: bool | None,
                        layout: str | None, reason: str, include_svg: bool = False) -> Prepared:
        validate_reason(reason)
        old = self._read_card(institution, serial)
        check_replace(old.state)
        use_braille = old.braille if braille is None else braille
        layout_name = self._layout(layout or (old.layout if old.braille else None))
        card, row = self._new_card(institution, old.customer_id, use_braille, layout_name, serial)
        job = self._render(card, use_braille, layout_name)
        preview, svg = self._masked(card, use_braille, layout_name, include_svg)

        def swap(tx: Tx) -> None:
            locked = self._card_for(tx, institution, serial, lock=True)
            check_replace(locked.state)
            now = self.clock()
            repo.set_state(tx, serial, CardState.REPLACED, now, replaced_by=row.serial)
            repo.insert_card(tx, row)
            self.audit.record(tx, action=ACTION_REPLACE, target=serial, outcome="replaced",
                              detail={"replaced_by": row.serial, "reason": reason})
            self.audit.record(tx, action=ACTION_ISSUE, target=row.serial, outcome="issued",
                              customer=old.customer_id,
                              detail={"medium": row.medium, "layout": row.layout,
                                      "replaces": serial})

        _run_unique(self.db, swap, f"customer {old.customer_id} already holds a live card")
        return Prepared(self._read_card(institution, row.serial), job, preview, svg)

    def prepare_reprint(self, institution: str, serial: str, layout: str | None,
                        reason: str) -> Prepared:
        """The job of an active card again, for a print lost before it reached the customer;
        audited here when the codes are released, whatever the print does."""
        validate_reason(reason)
        row = self._read_card(institution, serial)
        check_reprint(row.state)
        layout_name = self._layout(layout or (row.layout if row.braille else None))
        job = self._render(self._open_codes(row), row.braille, layout_name)

        def audit(tx: Tx) -> repo.CardRow:
            locked = self._card_for(tx, institution, serial, lock=True)
            check_reprint(locked.state)
            self.audit.record(tx, action=ACTION_REPRINT, target=serial, outcome="released",
                              detail={"reason": reason, "medium": row.medium,
                                      "layout": layout_name if row.braille else ""})
            return locked

        return Prepared(self.db.run(audit), job, "", "")

    # -- lifecycle ------------------------------------------------------------------------
    def revoke(self, institution: str, serial: str, reason: str) -> repo.CardRow:
        validate_reason(reason)

        def change(tx: Tx) -> repo.CardRow:
            row = self._card_for(tx, institution, serial, lock=True)
            check_revoke(row.state)
            repo.set_state(tx, serial, CardState.REVOKED, self.clock())
            self.audit.record(tx, action=ACTION_REVOKE, target=serial, outcome="revoked",
                              detail={"reason": reason, "previous_state": row.state.name.lower()})
            return self._card_for(tx, institution, serial)

        return self.db.run(change)

    def reset(self, institution: str, serial: str, reason: str) -> repo.CardRow:
        validate_reason(reason)

        def change(tx: Tx) -> repo.CardRow:
            row = self._card_for(tx, institution, serial, lock=True)
            check_reset(row.state)
            repo.reset_failures(tx, serial, self.clock())
            self.audit.record(tx, action=ACTION_RESET, target=serial, outcome="reset",
                              detail={"reason": reason, "failures_before": row.failures,
                                      "previous_state": row.state.name.lower()})
            return self._card_for(tx, institution, serial)

        return self.db.run(change)

    def get(self, institution: str, serial: str) -> repo.CardRow:
        return self._read_card(institution, serial)

    def holder(self, institution: str, customer_id: str) -> Holder:
        validate.customer_ref(customer_id)
        row = self.db.run(lambda tx: repo.live_card_for(tx, institution, customer_id),
                          write=False)
        return Holder(customer_id, row)

    # -- challenge and verify -------------------------------------------------------------
    def start_challenge(self, institution: str, serial: str, customer_id: str) -> StartedChallenge:
        if bool(serial) == bool(customer_id):
            raise BadRequest("give either the card serial or the customer_id")

        def find(tx: Tx) -> repo.CardRow:
            # under the card's row lock: the bound on its challenges is exact across nodes
            if serial:
                return self._card_for(tx, institution, serial, lock=True)
            validate.customer_ref(customer_id)
            found = repo.live_card_for(tx, institution, customer_id)
            if found is None:
                raise NoSuchObject(f"customer {customer_id} holds no live security card")
            return self._card_for(tx, institution, found.serial, lock=True)

        now = self.clock()
        self._challenges += 1
        prune = self._challenges % PRUNE_EVERY == 0
        policy = self.settings.challenge_policy

        def store(tx: Tx) -> tuple[repo.CardRow, Challenge]:
            row = find(tx)
            if row.state is not CardState.ACTIVE:
                raise WrongState(
                    f"card {row.serial} is {row.state.name.lower()}: "
                    + ("a branch must reset it" if row.state is CardState.RESTRICTED
                       else "it can no longer be used")
                )
            challenge = new_challenge(row.serial, row.spec, now, policy, self.random_bytes)
            repo.insert_challenge(tx, challenge, institution)
            repo.keep_latest_challenges(tx, row.serial, challenge.id,
                                        self.settings.max_challenges_per_card)
            self.audit.record(tx, action=ACTION_CHALLENGE, target=row.serial, outcome="issued",
                              detail={"challenge_id": challenge.id,
                                      "numbers": [challenge.first.number,
                                                  challenge.second.number]})
            if prune:
                repo.prune_challenges(tx, now - PRUNE_AFTER_SECONDS)
            return row, challenge

        row, challenge = self.db.run(store)
        prompt = self._text(challenge_text(challenge, row.code_digits))
        return StartedChallenge(challenge, row.code_digits, row.braille, prompt)

    def challenge_serial(self, tx: Tx, institution: str, challenge_id: str) -> str | None:
        """The card a challenge of ``institution`` was issued for (None: no such challenge)."""
        if not is_challenge_id(challenge_id):
            raise BadRequest("challenge_id must be 32 lower-case hex characters")
        found = repo.get_challenge(tx, challenge_id)
        if found is None or found.institution != institution:
            return None
        return found.challenge.serial

    def verify_in(self, tx: Tx, institution: str, challenge_id: str,
                  answer: str) -> tuple[Verdict, str]:
        """One answer evaluated in the caller's transaction (the card's row locked, its counter
        changed, audited); the verdict and the card's serial. Raises only before it writes."""
        if not is_challenge_id(challenge_id):
            raise BadRequest("challenge_id must be 32 lower-case hex characters")
        validate_answer_format(answer)
        found = repo.get_challenge(tx, challenge_id)
        if found is None or found.institution != institution:
            raise NoSuchObject("no such challenge: start a new one (a card keeps only its "
                               "most recent challenges)")
        challenge = found.challenge
        # a malformed answer changes nothing: checked before the challenge is consumed
        validate_answer_format(answer, challenge.answer_length)
        max_failures = self.settings.max_failures
        now = self.clock()
        if not repo.consume_challenge(tx, challenge_id, now):
            status = ChallengeState.USED
        elif challenge.expired(now):
            status = ChallengeState.EXPIRED
        else:
            status = ChallengeState.OPEN
        # the card row is locked before its state is read (PostgreSQL: FOR UPDATE; SQLite:
        # the write transaction holds the database lock)
        card = repo.get_card(tx, challenge.serial, lock=True)
        assert card is not None
        # the codes are opened for every answer, right or wrong, refused or not
        expected = expected_answer(self._open_codes(card), challenge)
        verdict = decide(state=card.state, failures=card.failures, challenge=status,
                         expected=expected, answer=answer, max_failures=max_failures)
        if verdict.count_failure:
            repo.add_failure(tx, card.serial, max_failures, now)
        elif verdict.reset_failures:
            repo.clear_failures(tx, card.serial, now)
        if status is not ChallengeState.USED:
            repo.set_challenge_outcome(tx, challenge_id, verdict.outcome.name.lower())
        self.audit.record(tx, action=ACTION_VERIFY, target=card.serial,
                          outcome=verdict.outcome.name.lower(),
                          detail={"challenge_id": challenge_id,
                                  "failures": verdict.failures,
                                  "state": verdict.state.name.lower()})
        return verdict, card.serial

    def message(self, verdict: Verdict) -> BrailleText:
        """What to tell the customer about ``verdict`` (in braille too, where available)."""
        return self._text(outcome_text(verdict.outcome, verdict.attempts_left,
                                       verdict.state is CardState.RESTRICTED))

    def verify(self, institution: str, challenge_id: str, answer: str) -> Verified:
        if not is_challenge_id(challenge_id):
            raise BadRequest("challenge_id must be 32 lower-case hex characters")
        validate_answer_format(answer)
        verdict, serial = self.db.run(
            lambda tx: self.verify_in(tx, institution, challenge_id, answer))
        return Verified(verdict, serial, self.message(verdict))


def _run_unique(db: Database, fn: Callable[[Tx], None], message: str) -> None:
    """Run ``fn``; a unique-index violation (a racing issue on PostgreSQL) is AlreadyPresent."""
    try:
        db.run(fn)
    except (AlreadyPresent, WrongState, NoSuchObject):
        raise
    except Exception as exc:
        if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
            raise AlreadyPresent(message) from None
        raise


__all__ = ["Outcome", "SecurityCardService"]
