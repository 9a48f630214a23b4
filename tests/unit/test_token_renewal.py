"""DOMAIN §6 renewal window, in Korean time (Asia/Seoul, UTC+9, no DST)."""

from __future__ import annotations

import datetime as dt

import pytest

from devices.token.certificates import KST, RenewalState, renewal_state, renewal_window

UTC = dt.UTC
# Issued 2025-03-10 09:00 KST, valid one year: expires 2026-03-10 09:00 KST (00:00 UTC).
NOT_BEFORE = dt.datetime(2025, 3, 10, 0, 0, tzinfo=UTC)
NOT_AFTER = dt.datetime(2026, 3, 10, 0, 0, tzinfo=UTC)


def kst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=KST)


def test_window_is_60_days_before_until_2359_59_kst_on_the_expiry_day() -> None:
    since, until = renewal_window(NOT_AFTER)
    assert since == kst(2026, 1, 9, 0, 0, 0)
    assert until == kst(2026, 3, 10, 23, 59, 59)
    assert until.utcoffset() == dt.timedelta(hours=9)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (kst(2025, 3, 10, 8, 59, 59), RenewalState.NOT_YET_VALID),
        (kst(2025, 3, 10, 9, 0, 0), RenewalState.VALID),
        (kst(2026, 1, 8, 23, 59, 59), RenewalState.VALID),
        (kst(2026, 1, 9, 0, 0, 0), RenewalState.RENEWABLE),
        (kst(2026, 3, 10, 9, 0, 1), RenewalState.RENEWABLE),  # past notAfter, same KST day
        (kst(2026, 3, 10, 23, 59, 59), RenewalState.RENEWABLE),
        (kst(2026, 3, 11, 0, 0, 0), RenewalState.EXPIRED),  # reissue only
        (dt.datetime(2026, 3, 10, 15, 0, 0, tzinfo=UTC), RenewalState.EXPIRED),  # 00:00 KST 11th
    ],
)
def test_renewal_state(now: dt.datetime, state: RenewalState) -> None:
    assert renewal_state(NOT_BEFORE, NOT_AFTER, now) is state


def test_expiry_day_is_the_korean_date_not_the_utc_date() -> None:
    # notAfter 2026-03-10 20:00 UTC is already 2026-03-11 05:00 in Seoul
    late = dt.datetime(2026, 3, 10, 20, 0, tzinfo=UTC)
    _, until = renewal_window(late)
    assert until == kst(2026, 3, 11, 23, 59, 59)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        renewal_state(NOT_BEFORE, NOT_AFTER, dt.datetime(2026, 1, 1))



def test_session_handles_never_look_like_options():
    """A handle is passed on command lines (authctl token ... --session HANDLE); a random
    url-safe token alone starts with "-" once in 64 draws."""
    from authd.token.sessions import new_handle

    handles = {new_handle() for _ in range(2000)}
    assert len(handles) == 2000
    assert not any(h.startswith("-") for h in handles)
