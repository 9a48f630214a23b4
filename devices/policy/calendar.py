"""The Korean calendar day a transfer counts on (daily limits, DOMAIN §4).

Korea keeps UTC+9 all year (no daylight saving since 1988), so the day is a fixed offset from
UTC; the offset is configuration for a deployment elsewhere. A day is named ``YYYY-MM-DD``.
"""

from __future__ import annotations

import datetime as dt

KOREA_UTC_OFFSET_HOURS = 9


def _zone(offset_hours: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=offset_hours))


def day_of(ts: float, offset_hours: int = KOREA_UTC_OFFSET_HOURS) -> str:
    """The calendar day (``YYYY-MM-DD``) at ``offset_hours`` east of UTC for epoch ``ts``."""
    return dt.datetime.fromtimestamp(ts, _zone(offset_hours)).date().isoformat()


def day_ends_at(ts: float, offset_hours: int = KOREA_UTC_OFFSET_HOURS) -> float:
    """Epoch seconds of the next midnight after ``ts`` in that zone (when the daily total
    starts again)."""
    zone = _zone(offset_hours)
    day = dt.datetime.fromtimestamp(ts, zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), zone).timestamp()
