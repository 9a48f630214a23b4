"""Inactivity suspension of internet banking (DOMAIN §7; FAQ; EFT art. 14(2)2).

Internet banking is suspended when the customer did not register within 5 days of the
electronic-finance agreement, or used it for 12 months. The FAQ lifts it online (the internet
banking's security centre, after a login), through the call centre (personal customers aged 14
or over, in person on the phone) or at a branch (with the agreement documents). Lifting counts
as use: the 12 months start again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import NotPermitted
from devices.policy.calendar import KOREA_UTC_OFFSET_HOURS
from devices.policy.grades import CustomerKind

DAY = 86400.0


@unique
class Suspension(StrEnum):
    NOT_REGISTERED = "not_registered"  # not registered within the days after the agreement
    UNUSED = "unused"  # no use for the months configured


@unique
class LiftChannel(StrEnum):
    ONLINE = "online"
    CALL_CENTRE = "call_centre"
    BRANCH = "branch"


@dataclass(frozen=True)
class InactivityRules:
    registration_days: int = 5
    unused_months: int = 12
    call_centre_minimum_age: int = 14
    utc_offset_hours: int = KOREA_UTC_OFFSET_HOURS


@dataclass(frozen=True)
class Activity:
    agreed_at: float
    registered_at: float  # 0: not registered for internet banking yet
    last_used_at: float  # 0: never used
    lifted_at: float  # 0: never lifted


def add_months(ts: float, months: int, offset_hours: int) -> float:
    """``ts`` moved ``months`` calendar months later (the day clamped to the month's end)."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    t = dt.datetime.fromtimestamp(ts, zone)
    month0 = t.month - 1 + months
    year, month = t.year + month0 // 12, month0 % 12 + 1
    for day in (t.day, 30, 29, 28):
        try:
            return t.replace(year=year, month=month, day=min(t.day, day)).timestamp()
        except ValueError:
            continue
    raise AssertionError("unreachable")


def suspension(a: Activity, now: float, rules: InactivityRules) -> Suspension | None:
    """Why internet banking is suspended now, or None."""
    if a.registered_at <= 0 and a.lifted_at <= 0:
        if now > a.agreed_at + rules.registration_days * DAY:
            return Suspension.NOT_REGISTERED
        return None
    last = max(a.registered_at, a.last_used_at, a.lifted_at)
    if now > add_months(last, rules.unused_months, rules.utc_offset_hours):
        return Suspension.UNUSED
    return None


def message(reason: Suspension, rules: InactivityRules) -> str:
    why = (f"internet banking was not registered within {rules.registration_days} days of the "
           "agreement" if reason is Suspension.NOT_REGISTERED else
           f"internet banking was not used for {rules.unused_months} months")
    return (f"Internet banking is suspended for your security: {why}. Lift the suspension in "
            "the internet banking's security centre after a login, through the call centre "
            f"(personal customers aged {rules.call_centre_minimum_age} or over) or at a "
            "branch with the agreement documents.")


def check_lift(channel: LiftChannel, kind: CustomerKind, *, strong_login: bool,
               age: int | None, rules: InactivityRules) -> None:
    """Whether the suspension may be lifted this way (FAQ)."""
    if channel is LiftChannel.BRANCH:
        return
    if channel is LiftChannel.ONLINE:
        if not strong_login:
            raise NotPermitted("an online lift needs a login with a certificate or another "
                               "strong means; otherwise the call centre or a branch",
                               reason="STRONG_LOGIN_NEEDED")
        return
    if kind is not CustomerKind.PERSONAL:
        raise NotPermitted("the call centre lifts suspensions of personal customers only",
                           reason="CALL_CENTRE_PERSONAL_ONLY")
    if age is None or age < rules.call_centre_minimum_age:
        raise NotPermitted(f"the call centre lifts the suspension for customers aged "
                           f"{rules.call_centre_minimum_age} or over, in person on the phone",
                           reason="CALL_CENTRE_AGE")
