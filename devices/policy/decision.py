"""A transfer decision: its outcome, the reasons, and what it consumed of the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum, unique

from devices.policy.exemptions import AdditionalKind, Exemption, NoCertificate
from devices.policy.grades import Grade, Limits


@unique
class Outcome(StrEnum):
    APPROVED = "approved"
    ADDITIONAL_AUTHENTICATION_REQUIRED = "additional_authentication_required"
    OVER_LIMIT = "over_limit"
    SUSPENDED = "suspended"
    MEDIUM_REFUSED = "medium_refused"
    DEVICE_ON_INCIDENT_LIST = "device_on_incident_list"
    AUTHENTICATION_FAILED = "authentication_failed"
    DUPLICATE = "duplicate"


@unique
class Why(StrEnum):
    """Stable reason codes a backend may act on (the message says the same to a person)."""

    # approved
    WITHIN_LIMITS = "within_limits"
    NO_CERTIFICATE_NEEDED = "no_certificate_needed"
    DESIGNATED_TERMINAL = "designated_terminal"
    EXEMPT_FROM_ADDITIONAL = "exempt_from_additional_authentication"
    ADDITIONAL_DONE = "additional_authentication_done"
    # refusals
    NOT_DESIGNATED = "terminal_not_designated"
    OVER_PER_TRANSFER = "over_per_transfer_limit"
    OVER_DAILY = "over_daily_limit"
    NOT_REGISTERED_IN_TIME = "not_registered_in_time"
    UNUSED = "unused"
    INPUT_RESTRICTED = "input_restricted"
    MEDIUM_LOCKED = "medium_locked"
    MEDIUM_LOST = "medium_lost"
    MEDIUM_RESTRICTED = "medium_restricted"
    MEDIUM_ENDED = "medium_ended"
    NOT_CUSTOMERS_MEDIUM = "not_customers_medium"
    NO_MEDIUM = "no_medium_presented"
    GRADE_NOT_AVAILABLE = "grade_not_available"
    EMPLOYEE_FOREIGN_OTP = "employee_foreign_otp"
    FOREIGN_OTP_NOT_AT_BRANCH = "foreign_otp_not_registered_at_branch"
    INCIDENT_LIST = "device_on_incident_list"
    WRONG_CODE = "wrong_code"
    WRONG_ANSWER = "wrong_answer"
    REPLAYED = "replayed"
    CHALLENGE_UNUSABLE = "challenge_unusable"
    BAD_SIGNATURE = "bad_signature"
    TOKEN_NOT_REGISTERED = "token_not_registered_at_branch"
    SAME_IDEMPOTENCY_KEY = "same_idempotency_key"
    IDENTICAL_ORDER = "identical_order_within_window"


@dataclass(frozen=True)
class Reason:
    why: Why
    message: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    grade: Grade | None = None
    limits: Limits | None = None  # what applied: the effective per-transfer and daily limits
    consumed: int = 0  # KRW counted on today's total by this decision
    used_today: int = 0  # today's total after this decision
    additional_kinds: tuple[AdditionalKind, ...] = ()
    exemptions: tuple[Exemption, ...] = ()
    no_certificate: NoCertificate | None = None
    attempts_left: int | None = None  # of the medium presented, after a wrong entry
    day: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def daily_left(self) -> int:
        return 0 if self.limits is None else max(0, self.limits.daily - self.used_today)

    @property
    def message(self) -> str:
        return " ".join(r.message for r in self.reasons)


def refused(outcome: Outcome, why: Why, message: str, **kw: object) -> Decision:
    return Decision(outcome, (Reason(why, message),), **kw)  # type: ignore[arg-type]


def over_limit(amount: int, limits: Limits, used_today: int) -> Reason | None:
    """Why ``amount`` does not fit the limits with ``used_today`` already counted, or None."""
    if amount > limits.per_transfer:
        return Reason(Why.OVER_PER_TRANSFER,
                      f"The amount exceeds the limit of {limits.per_transfer:,} KRW per "
                      "transfer.")
    left = max(0, limits.daily - used_today)
    if amount > left:
        return Reason(Why.OVER_DAILY,
                      f"The amount exceeds what is left of today's limit: {left:,} of "
                      f"{limits.daily:,} KRW.")
    return None


def to_record(d: Decision) -> dict[str, object]:
    """The decision as stored and exported (JSON types only)."""
    return {
        "outcome": d.outcome.value,
        "reasons": [{"why": r.why.value, "message": r.message} for r in d.reasons],
        "grade": d.grade.value if d.grade else None,
        "limits": ({"per_transfer": d.limits.per_transfer, "daily": d.limits.daily}
                   if d.limits else None),
        "consumed": d.consumed, "used_today": d.used_today,
        "additional_kinds": [k.value for k in d.additional_kinds],
        "exemptions": [e.value for e in d.exemptions],
        "no_certificate": d.no_certificate.value if d.no_certificate else None,
        "attempts_left": d.attempts_left, "day": d.day, "extra": dict(d.extra),
    }


def from_record(r: dict[str, object]) -> Decision:
    limits = r.get("limits")
    reasons = r.get("reasons") or []
    assert isinstance(reasons, list)
    grade, nocert, attempts = r.get("grade"), r.get("no_certificate"), r.get("attempts_left")
    extra = r.get("extra") or {}
    assert isinstance(extra, dict)
    return Decision(
        Outcome(str(r["outcome"])),
        tuple(Reason(Why(x["why"]), str(x["message"])) for x in reasons),
        grade=Grade(str(grade)) if grade else None,
        limits=(Limits(int(limits["per_transfer"]), int(limits["daily"]))
                if isinstance(limits, dict) else None),
        consumed=int(str(r.get("consumed", 0))), used_today=int(str(r.get("used_today", 0))),
        additional_kinds=tuple(AdditionalKind(str(k)) for k in
                               (r.get("additional_kinds") or [])),  # type: ignore[attr-defined]
        exemptions=tuple(Exemption(str(e)) for e in
                         (r.get("exemptions") or [])),  # type: ignore[attr-defined]
        no_certificate=NoCertificate(str(nocert)) if nocert else None,
        attempts_left=None if attempts is None else int(str(attempts)),
        day=str(r.get("day", "")), extra={str(k): str(v) for k, v in extra.items()})
