"""A certificate's validity and renewal window, in Korean time (DOMAIN §6; FAQ).

A certificate is valid one year from issuance; it may be renewed from 60 days before expiry
until 23:59:59 on the expiry day, Korean time (Asia/Seoul); after that only reissue works.
The expiry *day* is the Korean calendar date of notAfter, so a certificate stays renewable for
the rest of that day even when its notAfter is earlier in it. The certificates this project's
CA issues end at 23:59:59 Korean time on the expiry day, so both ends meet.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum, unique
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
VALIDITY_YEARS = 1
RENEWAL_WINDOW_DAYS = 60


@unique
class RenewalState(StrEnum):
    NOT_YET_VALID = "not_yet_valid"
    VALID = "valid"  # in use; too early to renew
    RENEWABLE = "renewable"  # within the renewal window
    EXPIRED = "expired"  # reissue only


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def expiry_day(issued: dt.datetime, years: int = VALIDITY_YEARS) -> dt.date:
    """The Korean calendar day a certificate issued at ``issued`` expires: the same date
    ``years`` later (29 February: 28 February)."""
    day = _aware(issued).astimezone(KST).date()
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def validity_period(issued: dt.datetime,
                    years: int = VALIDITY_YEARS) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter) of a certificate issued at ``issued``: from that second until
    23:59:59 Korean time on its expiry day, both in UTC."""
    start = _aware(issued).astimezone(dt.UTC).replace(microsecond=0)
    end = dt.datetime.combine(expiry_day(issued, years), dt.time(23, 59, 59), tzinfo=KST)
    return start, end.astimezone(dt.UTC)


def renewal_window(
    not_after: dt.datetime, window_days: int = RENEWAL_WINDOW_DAYS
) -> tuple[dt.datetime, dt.datetime]:
    """(first moment renewable, last moment renewable), both in Korean time."""
    day = not_after.astimezone(KST).date()
    until = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=KST)
    since = dt.datetime.combine(day - dt.timedelta(days=window_days), dt.time(0, 0, 0),
                                tzinfo=KST)
    return since, until


def renewal_state(
    not_before: dt.datetime,
    not_after: dt.datetime,
    now: dt.datetime,
    window_days: int = RENEWAL_WINDOW_DAYS,
) -> RenewalState:
    _aware(now)
    since, until = renewal_window(not_after, window_days)
    if now < not_before:
        return RenewalState.NOT_YET_VALID
    if now > until.replace(microsecond=999_999):
        return RenewalState.EXPIRED
    if now >= since:
        return RenewalState.RENEWABLE
    return RenewalState.VALID


def in_validity(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime) -> bool:
    """Whether ``now`` is within the X.509 validity period (both ends included, RFC 5280)."""
    return not_before <= _aware(now) <= not_after
