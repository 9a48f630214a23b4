"""Proto <-> domain conversion for the security-card service."""

from __future__ import annotations

from authd import validate
from authd.enums import EnumMap
from authd.security_card import repository as repo
from authd.security_card.output import (
    FAILURE_FAULT,
    FAILURE_NONE,
    FAILURE_OFFLINE,
    FAILURE_PAPER_JAM,
    FAILURE_PAPER_OUT,
    FAILURE_TIMEOUT,
    STATE_COMPLETED,
    STATE_FAILED,
    STATE_QUEUED,
    STATE_SENT,
    PrintOutcome,
)
from authd.security_card.service import Holder, Prepared, StartedChallenge, Verified
from authd.v1 import security_card_pb2 as pb
from devices.errors import BadRequest
from devices.security_card import CardState, DigitRequest, Outcome

STATE = EnumMap("state", {
    CardState.ACTIVE: pb.SECURITY_CARD_STATE_ACTIVE,
    CardState.RESTRICTED: pb.SECURITY_CARD_STATE_RESTRICTED,
    CardState.REVOKED: pb.SECURITY_CARD_STATE_REVOKED,
    CardState.REPLACED: pb.SECURITY_CARD_STATE_REPLACED,
})
OUTCOME = EnumMap("outcome", {
    Outcome.ACCEPTED: pb.SECURITY_CARD_OUTCOME_ACCEPTED,
    Outcome.WRONG_ANSWER: pb.SECURITY_CARD_OUTCOME_WRONG_ANSWER,
    Outcome.CARD_RESTRICTED: pb.SECURITY_CARD_OUTCOME_CARD_RESTRICTED,
    Outcome.CARD_REVOKED: pb.SECURITY_CARD_OUTCOME_CARD_REVOKED,
    Outcome.CARD_REPLACED: pb.SECURITY_CARD_OUTCOME_CARD_REPLACED,
    Outcome.CHALLENGE_EXPIRED: pb.SECURITY_CARD_OUTCOME_CHALLENGE_EXPIRED,
    Outcome.CHALLENGE_USED: pb.SECURITY_CARD_OUTCOME_CHALLENGE_USED,
})
PRINT_STATE = EnumMap("print_job.state", {
    STATE_COMPLETED: pb.SECURITY_CARD_PRINT_COMPLETED,
    STATE_SENT: pb.SECURITY_CARD_PRINT_SENT,
    STATE_QUEUED: pb.SECURITY_CARD_PRINT_QUEUED,
    STATE_FAILED: pb.SECURITY_CARD_PRINT_FAILED,
})
PRINT_FAILURE = EnumMap("print_job.failure", {
    FAILURE_NONE: pb.SECURITY_CARD_PRINT_FAILURE_NONE,
    FAILURE_OFFLINE: pb.SECURITY_CARD_PRINT_FAILURE_OFFLINE,
    FAILURE_PAPER_JAM: pb.SECURITY_CARD_PRINT_FAILURE_PAPER_JAM,
    FAILURE_PAPER_OUT: pb.SECURITY_CARD_PRINT_FAILURE_PAPER_OUT,
    FAILURE_FAULT: pb.SECURITY_CARD_PRINT_FAILURE_DEVICE_FAULT,
    FAILURE_TIMEOUT: pb.SECURITY_CARD_PRINT_FAILURE_TIMEOUT,
})
LAYOUT = EnumMap("layout", {"card": pb.SECURITY_CARD_LAYOUT_CARD,
                            "page": pb.SECURITY_CARD_LAYOUT_PAGE})


def layout_in(value: int) -> str | None:
    """UNSPECIFIED: the configured default layout."""
    return LAYOUT.from_pb(value, None)


def braille_in(value: int, *, default: bool | None) -> bool | None:
    """Medium: PRINTED -> False, BRAILLE -> True, UNSPECIFIED -> ``default``."""
    if value == pb.SECURITY_CARD_MEDIUM_BRAILLE:
        return True
    if value == pb.SECURITY_CARD_MEDIUM_PRINTED:
        return False
    if value == pb.SECURITY_CARD_MEDIUM_UNSPECIFIED:
        return default
    raise BadRequest(f"unknown medium {value}")


def card_status(row: repo.CardRow, max_failures: int) -> pb.SecurityCardStatus:
    return pb.SecurityCardStatus(
        serial=row.serial,
        customer_id=row.customer_id,
        medium=pb.SECURITY_CARD_MEDIUM_BRAILLE if row.braille else pb.SECURITY_CARD_MEDIUM_PRINTED,
        state=STATE.to_pb(row.state),
        failures=row.failures,
        max_failures=max_failures,
        attempts_left=max(0, max_failures - row.failures) if row.state is CardState.ACTIVE else 0,
        code_count=row.code_count,
        code_digits=row.code_digits,
        issued_at=row.issued_at,
        updated_at=row.updated_at,
        replaces=row.replaces,
        replaced_by=row.replaced_by,
        print_count=row.print_count,
        last_print_state=PRINT_STATE.to_pb_or(row.last_print_state,
                                              pb.SECURITY_CARD_PRINT_STATE_UNSPECIFIED),
        braille_card_user=row.braille and row.live,
        layout=LAYOUT.to_pb_or(row.layout, pb.SECURITY_CARD_LAYOUT_UNSPECIFIED),
    )


def print_job(outcome: PrintOutcome) -> pb.SecurityCardPrintJob:
    return pb.SecurityCardPrintJob(
        job_id=outcome.job_id,
        state=PRINT_STATE.to_pb(outcome.state),
        failure=PRINT_FAILURE.to_pb(outcome.failure),
        message=outcome.message,
        device=outcome.device,
        pages=outcome.pages,
        bytes=outcome.bytes,
    )


def release(prepared: Prepared, max_failures: int) -> pb.SecurityCardPrintRelease:
    return pb.SecurityCardPrintRelease(
        card=card_status(prepared.card, max_failures), job=prepared.job,
        job_name=prepared.job_name, masked_preview=prepared.masked_preview,
        masked_svg=prepared.masked_svg)


MAX_PAGES = 10_000


def print_outcome_in(job: pb.SecurityCardPrintJob) -> PrintOutcome:
    """What a device's node reports of a print (checked like any request)."""
    state = PRINT_STATE.from_pb(job.state)
    failure = PRINT_FAILURE.from_pb(job.failure)
    if not 0 <= job.pages <= MAX_PAGES or job.bytes < 0:
        raise BadRequest("print_job.pages and bytes must be sensible counts", field="print_job")
    return PrintOutcome(validate.text(job.job_id, "print_job.job_id", max_length=128), state,
                        failure, validate.text(job.message, "print_job.message"),
                        validate.text(job.device, "print_job.device"), job.pages, job.bytes)


def _digits(request: DigitRequest) -> pb.SecurityCardDigitRequest:
    return pb.SecurityCardDigitRequest(
        code_number=request.number, digit_positions=[p + 1 for p in request.positions]
    )


def challenge(started: StartedChallenge) -> pb.SecurityCardChallenge:
    ch = started.challenge
    return pb.SecurityCardChallenge(
        challenge_id=ch.id,
        serial=ch.serial,
        first=_digits(ch.first),
        second=_digits(ch.second),
        answer_length=ch.answer_length,
        expires_at=ch.expires_at,
        prompt_text=started.prompt.text,
        prompt_braille=started.prompt.braille,
        prompt_brf=started.prompt.brf,
        braille_card=started.braille_card,
    )


def verified(result: Verified) -> pb.VerifySecurityCardAnswerResponse:
    v = result.verdict
    return pb.VerifySecurityCardAnswerResponse(
        outcome=OUTCOME.to_pb(v.outcome),
        accepted=v.accepted,
        serial=result.serial,
        card_state=STATE.to_pb(v.state),
        failures=v.failures,
        attempts_left=v.attempts_left if v.state is CardState.ACTIVE else 0,
        message_text=result.message.text,
        message_braille=result.message.braille,
    )


EXEMPTION_REASON = "braille security card user (EFT art. 14(1)6)"


def holder(result: Holder) -> pb.SecurityCardHolder:
    user = result.braille_card_user
    return pb.SecurityCardHolder(
        customer_id=result.customer_id,
        active_serial=result.card.serial if result.card is not None else "",
        braille_card_user=user,
        additional_authentication_exempt=user,
        exemption_reason=EXEMPTION_REASON if user else "",
    )
