"""The OTP center's verification rules as a pure function of a device's state.

DOMAIN.md §2–3: one consecutive-failure counter per device, summed over all institutions; the
10th consecutive failure locks the device everywhere; a success resets the counter; a locked,
lost, replaced or expired device is refused without looking at the code (no oracle); a code is
never accepted twice, and the codes just used answer REPLAYED without counting as a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum, unique

from devices.errors import BadRequest
from devices.otp.codes import Algorithm, codes_equal, find_counter, hotp, time_step

# Patterns match whole values (fullmatch): "$" would let a trailing newline through.
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{3,31}")
INSTITUTION = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# Counters are kept as signed 64-bit integers: no window reaches past the last one.
COUNTER_MAX = 2**63 - 1


@unique
class Kind(StrEnum):
    TOTP = "totp"
    HOTP = "hotp"


@unique
class State(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    LOST = "lost"  # accident-reported (사고신고)
    REPLACED = "replaced"
    EXPIRED = "expired"


@unique
class Outcome(StrEnum):
    ACCEPTED = "accepted"
    WRONG_CODE = "wrong_code"
    LOCKED = "locked"
    REPORTED_LOST = "reported_lost"
    NOT_REGISTERED = "not_registered"
    EXPIRED_OR_REPLACED = "expired_or_replaced"
    REPLAYED = "replayed"


@dataclass(frozen=True)
class Params:
    kind: Kind
    digits: int
    period: int
    algorithm: Algorithm

    def check(self) -> Params:
        if self.digits not in (6, 7, 8):
            raise BadRequest("digits must be 6, 7 or 8")
        if not 15 <= self.period <= 300:  # HOTP keeps it too (a later switch to TOTP)
            raise BadRequest("time step must be 15..300 seconds")
        return self


@dataclass(frozen=True)
class DeviceState:
    """What verification needs of a device (the seed already opened)."""

    serial: str
    params: Params
    state: State
    failures: int
    # HOTP: the last accepted counter (-1 before the first); TOTP: the last accepted time step.
    last: int
    # TOTP: clock drift of the device in steps, learnt by resync.
    drift: int = 0


@dataclass(frozen=True)
class Policy:
    lockout_threshold: int = 10
    drift_steps: int = 1
    hotp_look_ahead: int = 10
    resync_window: int = 1000


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    device: DeviceState  # the state after this verification


def check_serial(serial: str) -> str:
    if SERIAL.fullmatch(serial) is None:
        raise BadRequest("serial must be 4..32 letters, digits or dashes")
    return serial


def check_code(code: str, digits: int) -> str:
    if len(code) != digits or not code.isascii() or not code.isdigit():
        raise BadRequest(f"code must be exactly {digits} digits")
    return code


def refusal(state: State) -> Outcome | None:
    """The outcome for a device that may not be evaluated, whatever the code."""
    return {
        State.LOCKED: Outcome.LOCKED,
        State.LOST: Outcome.REPORTED_LOST,
        State.REPLACED: Outcome.EXPIRED_OR_REPLACED,
        State.EXPIRED: Outcome.EXPIRED_OR_REPLACED,
    }.get(state)


def hotp_window(last: int, policy: Policy) -> range:
    """The HOTP counters a code may be accepted at: the ``hotp_look_ahead`` after ``last``."""
    return range(last + 1, min(last + 1 + policy.hotp_look_ahead, COUNTER_MAX + 1))


def hotp_replay_window(last: int, policy: Policy) -> range:
    """The HOTP counters whose codes answer REPLAYED: the last ``hotp_look_ahead`` up to and
    including ``last``. No code at or below ``last`` is ever accepted; one older than this
    window cannot be told from a guess (with 6 digits nearly every value is the code of some
    old counter) and counts as a wrong code, or guessing would become free."""
    return range(max(0, last - policy.hotp_look_ahead + 1), last + 1)


def verify(device: DeviceState, seed: bytes, code: str, now: float, policy: Policy) -> Decision:
    """Evaluate ``code`` against an ACTIVE device (callers check ``refusal`` first)."""
    assert device.state is State.ACTIVE
    p = device.params
    if p.kind is Kind.TOTP:
        step = time_step(now, p.period) + device.drift
        window = range(step - policy.drift_steps, step + policy.drift_steps + 1)
        matched = find_counter(seed, code, window, p.digits, p.algorithm)
        replay = matched is not None and matched <= device.last
    else:
        matched = find_counter(seed, code, hotp_window(device.last, policy), p.digits,
                               p.algorithm)
        replay = False
        if matched is None:
            replay = find_counter(seed, code, hotp_replay_window(device.last, policy), p.digits,
                                  p.algorithm) is not None
    if matched is not None and not replay:
        return Decision(Outcome.ACCEPTED, DeviceState(device.serial, p, State.ACTIVE, 0, matched,
                                                      device.drift))
    if replay:
        # A code seen before is refused; it is not a guess, so it does not count as one.
        return Decision(Outcome.REPLAYED, device)
    failures = device.failures + 1
    state = State.LOCKED if failures >= policy.lockout_threshold else State.ACTIVE
    return Decision(Outcome.WRONG_CODE, DeviceState(device.serial, p, state, failures,
                                                    device.last, device.drift))


def resync(device: DeviceState, seed: bytes, first: str, second: str, now: float,
           policy: Policy) -> DeviceState | None:
    """Find where two consecutive codes sit; the device state after them, or None."""
    p = device.params
    if p.kind is Kind.HOTP:
        start = device.last + 1
        window = range(start, min(start + policy.resync_window, COUNTER_MAX))
    else:
        step = time_step(now, p.period)
        reach = max(policy.drift_steps, policy.resync_window // 10)
        window = range(step - reach, step + reach + 1)
    for counter in window:
        if codes_equal(hotp(seed, counter, p.digits, p.algorithm), first) and codes_equal(
                hotp(seed, counter + 1, p.digits, p.algorithm), second):
            if p.kind is Kind.HOTP:
                return replace(device, last=counter + 1)
            return replace(device, last=counter + 1, drift=counter + 1 - time_step(now, p.period))
    return None
