"""The OTP center's rules as pure functions (DOMAIN.md §2–3)."""

from __future__ import annotations

import pytest

from devices.errors import BadRequest
from devices.otp import rules
from devices.otp.codes import Algorithm, hotp, totp
from devices.otp.rules import DeviceState, Kind, Outcome, Params, Policy, State

SEED = b"12345678901234567890"
NOW = 1_800_000_000.0
TOTP = Params(Kind.TOTP, 6, 60, Algorithm.SHA1)
HOTP = Params(Kind.HOTP, 6, 60, Algorithm.SHA1)
POLICY = Policy()


def dev(params: Params = TOTP, failures: int = 0, last: int = -1, drift: int = 0) -> DeviceState:
    return DeviceState("SN-0001", params, State.ACTIVE, failures, last, drift)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_totp_accepts_current_and_neighbouring_steps_only():
    for offset, ok in ((-120, False), (-60, True), (0, True), (60, True), (120, False)):
        code = totp(SEED, NOW + offset, 60)
        outcome = rules.verify(dev(), SEED, code, NOW, POLICY).outcome
        assert (outcome is Outcome.ACCEPTED) is ok, offset


def test_totp_code_is_never_accepted_twice():
    code = totp(SEED, NOW, 60)
    first = rules.verify(dev(), SEED, code, NOW, POLICY)
    assert first.outcome is Outcome.ACCEPTED
    second = rules.verify(first.device, SEED, code, NOW + 1, POLICY)
    assert second.outcome is Outcome.REPLAYED and second.device.failures == 0
    older = totp(SEED, NOW - 60, 60)
    assert rules.verify(first.device, SEED, older, NOW, POLICY).outcome is Outcome.REPLAYED


def test_hotp_look_ahead_and_replay():
    d = dev(HOTP)
    accepted = rules.verify(d, SEED, hotp(SEED, 3), NOW, POLICY)
    assert accepted.outcome is Outcome.ACCEPTED and accepted.device.last == 3
    for counter in (0, 3):
        again = rules.verify(accepted.device, SEED, hotp(SEED, counter), NOW, POLICY)
        assert again.outcome is Outcome.REPLAYED
    too_far = rules.verify(accepted.device, SEED, hotp(SEED, 3 + 11), NOW, POLICY)
    assert too_far.outcome is Outcome.WRONG_CODE


def test_tenth_consecutive_failure_locks_and_success_resets():
    code = totp(SEED, NOW, 60)
    d = dev()
    for n in range(1, 10):
        decision = rules.verify(d, SEED, wrong(code), NOW, POLICY)
        assert decision.outcome is Outcome.WRONG_CODE and decision.device.failures == n
        assert decision.device.state is State.ACTIVE
        d = decision.device
    ok = rules.verify(d, SEED, code, NOW, POLICY)
    assert ok.outcome is Outcome.ACCEPTED and ok.device.failures == 0
    d = ok.device
    for _ in range(10):
        d = rules.verify(d, SEED, wrong(code), NOW, POLICY).device
    assert d.state is State.LOCKED and d.failures == 10


@pytest.mark.parametrize("state,outcome", [(State.LOCKED, Outcome.LOCKED),
                                           (State.LOST, Outcome.REPORTED_LOST),
                                           (State.REPLACED, Outcome.EXPIRED_OR_REPLACED),
                                           (State.EXPIRED, Outcome.EXPIRED_OR_REPLACED),
                                           (State.ACTIVE, None)])
def test_refusal_depends_on_state_only(state: State, outcome: Outcome | None):
    assert rules.refusal(state) is outcome


def test_resync_hotp_and_totp():
    d = dev(HOTP)
    after = rules.resync(d, SEED, hotp(SEED, 500), hotp(SEED, 501), NOW, POLICY)
    assert after is not None and after.last == 501
    assert rules.resync(d, SEED, hotp(SEED, 500), hotp(SEED, 502), NOW, POLICY) is None
    # A TOTP token whose clock runs 5 steps behind.
    t = dev(TOTP)
    behind = NOW - 5 * 60
    fixed = rules.resync(t, SEED, totp(SEED, behind, 60), totp(SEED, behind + 60, 60), NOW,
                         POLICY)
    assert fixed is not None and fixed.drift == -4
    later = NOW + 600
    assert rules.verify(fixed, SEED, totp(SEED, later - 5 * 60 + 60, 60), later,
                        POLICY).outcome is Outcome.ACCEPTED


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "１２３４５６"])
def test_code_format(code: str):
    with pytest.raises(BadRequest):
        rules.check_code(code, 6)


@pytest.mark.parametrize("serial", ["", "abc", "a" * 33, "SN 1", "-SN1", "SN1;"])
def test_serial_format(serial: str):
    with pytest.raises(BadRequest):
        rules.check_serial(serial)


def test_hotp_old_codes_are_never_accepted_and_only_recent_ones_are_free():
    """The exact replay bound: with ``last`` the last accepted counter, the codes of counters
    last-9 .. last answer REPLAYED and count nothing; an older code is a wrong code (counted),
    like any guess. No code at or below ``last`` is ever accepted."""
    last = 100
    d = dev(HOTP, failures=3, last=last)
    ahead = {hotp(SEED, c) for c in rules.hotp_window(last, POLICY)}
    assert rules.hotp_replay_window(last, POLICY) == range(last - 9, last + 1)
    for counter in range(0, last + 1):
        code = hotp(SEED, counter)
        if code in ahead:
            continue  # the same digits as a code still to come: that one is accepted
        decision = rules.verify(d, SEED, code, NOW, POLICY)
        assert decision.outcome is not Outcome.ACCEPTED, counter
        if counter > last - POLICY.hotp_look_ahead:
            assert decision.outcome is Outcome.REPLAYED, counter
            assert decision.device == d  # not counted, nothing moved
        elif code not in {hotp(SEED, c) for c in rules.hotp_replay_window(last, POLICY)}:
            assert decision.outcome is Outcome.WRONG_CODE, counter
            assert decision.device.failures == 4


def test_hotp_replay_window_near_the_first_counter():
    assert rules.hotp_replay_window(-1, POLICY) == range(0, 0)
    assert rules.hotp_replay_window(3, POLICY) == range(0, 4)


def test_hotp_counters_stop_at_the_store_limit():
    """A device at the last counter a 64-bit store holds accepts that code once, then no
    window reaches past it (no counter the store cannot hold is ever produced)."""
    top = rules.COUNTER_MAX
    assert rules.hotp_window(top - 1, POLICY) == range(top, top + 1)
    assert rules.hotp_window(top, POLICY) == range(top + 1, top + 1)
    d = dev(HOTP, last=top - 1)
    ok = rules.verify(d, SEED, hotp(SEED, top), NOW, POLICY)
    assert ok.outcome is Outcome.ACCEPTED and ok.device.last == top
    again = rules.verify(ok.device, SEED, hotp(SEED, top), NOW, POLICY)
    assert again.outcome is Outcome.REPLAYED
    assert rules.resync(ok.device, SEED, hotp(SEED, 5), hotp(SEED, 6), NOW, POLICY) is None


def test_period_is_checked_for_every_kind():
    with pytest.raises(BadRequest, match="time step"):
        Params(Kind.HOTP, 6, 2**32 - 1, Algorithm.SHA1).check()
    assert Params(Kind.HOTP, 6, 60, Algorithm.SHA1).check().period == 60
