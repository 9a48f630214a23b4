"""Security grades and transfer limits (DOMAIN §4; FAQ; IB art. 9).

A grade follows from the medium used for the transfer: an OTP generator gives the safe grade,
a security card the general grade (personal customers only). Each grade has a maximum per
transfer and per day; a customer's own limits stay within it, lowered online and raised only at
a branch (IB art. 9(3)); above the maximum only by a recorded contract (IB art. 9(2)).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import BadRequest, NotPermitted

# The most any setting or contract may hold: 10^15 KRW (fits every store's 64-bit integer).
MAX_KRW = 10**15


@unique
class CustomerKind(StrEnum):
    PERSONAL = "personal"
    CORPORATE = "corporate"


@unique
class Grade(StrEnum):
    PERSONAL_SAFE = "personal_safe"  # OTP
    PERSONAL_GENERAL = "personal_general"  # security card
    CORPORATE_SAFE = "corporate_safe"  # OTP


@unique
class GradeMedium(StrEnum):
    """The media that give a grade."""

    OTP = "otp"
    SECURITY_CARD = "security_card"


@dataclass(frozen=True)
class Limits:
    per_transfer: int
    daily: int

    def check(self, what: str = "limits") -> Limits:
        for name, value in (("per_transfer", self.per_transfer), ("daily", self.daily)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KRW:
                raise BadRequest(f"{what}.{name} must be 1..{MAX_KRW} KRW", field=name)
        if self.per_transfer > self.daily:
            raise BadRequest(f"{what}: the per-transfer limit may not exceed the daily limit",
                             field="per_transfer")
        return self

    def within(self, ceiling: Limits) -> bool:
        return self.per_transfer <= ceiling.per_transfer and self.daily <= ceiling.daily

    def capped(self, ceiling: Limits) -> Limits:
        return Limits(min(self.per_transfer, ceiling.per_transfer),
                      min(self.daily, ceiling.daily))


# DOMAIN §4 defaults (FAQ; IB art. 9(1)).
DEFAULT_GRADE_LIMITS: dict[Grade, Limits] = {
    Grade.PERSONAL_SAFE: Limits(100_000_000, 500_000_000),
    Grade.PERSONAL_GENERAL: Limits(10_000_000, 50_000_000),
    Grade.CORPORATE_SAFE: Limits(1_000_000_000, 5_000_000_000),
}

_GRADES: dict[tuple[CustomerKind, GradeMedium], Grade] = {
    (CustomerKind.PERSONAL, GradeMedium.OTP): Grade.PERSONAL_SAFE,
    (CustomerKind.PERSONAL, GradeMedium.SECURITY_CARD): Grade.PERSONAL_GENERAL,
    (CustomerKind.CORPORATE, GradeMedium.OTP): Grade.CORPORATE_SAFE,
}
# Best first: the grade a customer may reach with the media held.
_RANK = (Grade.CORPORATE_SAFE, Grade.PERSONAL_SAFE, Grade.PERSONAL_GENERAL)


def grade_for(kind: CustomerKind, medium: GradeMedium) -> Grade | None:
    """The grade a transfer made with ``medium`` has; None when that medium gives none to
    this kind of customer (a corporate customer transfers with an OTP only)."""
    return _GRADES.get((kind, medium))


def best_grade(kind: CustomerKind, usable: set[GradeMedium]) -> Grade | None:
    """The highest grade reachable with the usable media held."""
    grades = {g for m in usable if (g := grade_for(kind, m)) is not None}
    return next((g for g in _RANK if g in grades), None)


@dataclass(frozen=True)
class Contract:
    """A recorded contract raising a grade's maximum for one customer (IB art. 9(2))."""

    reference: str
    grade: Grade
    ceiling: Limits


def ceiling(grade: Grade, grade_limits: dict[Grade, Limits], contract: Contract | None) -> Limits:
    """The most a customer of ``grade`` may set: the grade's maximum, or a contract's."""
    if contract is not None and contract.grade is grade:
        return contract.ceiling
    return grade_limits[grade]


def effective(grade: Grade, grade_limits: dict[Grade, Limits], own: Limits | None,
              contract: Contract | None) -> Limits:
    """The limits a transfer of ``grade`` meets: the customer's own limits within the
    ceiling (the ceiling itself when the customer set none)."""
    top = ceiling(grade, grade_limits, contract)
    return top if own is None else own.capped(top)


def check_change(current: Limits, wanted: Limits, top: Limits, *, at_branch: bool) -> None:
    """Whether a customer's limits may change from ``current`` to ``wanted`` under ``top``:
    lowering is allowed anywhere, raising only at a branch, never above ``top``."""
    wanted.check("limits")
    if not wanted.within(top):
        raise NotPermitted(
            f"the limits may not exceed {top.per_transfer:,} KRW per transfer and "
            f"{top.daily:,} KRW per day without a recorded contract (IB art. 9(2))",
            reason="ABOVE_GRADE_MAXIMUM")
    raising = wanted.per_transfer > current.per_transfer or wanted.daily > current.daily
    if raising and not at_branch:
        raise NotPermitted("limits are raised only at a branch; online they can only be "
                           "lowered (IB art. 9(3))", reason="RAISE_AT_BRANCH")
