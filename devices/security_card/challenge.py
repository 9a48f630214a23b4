"""Challenges: two distinct code numbers and which of their digits are asked."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from devices.errors import BadRequest
from devices.security_card.card import CardSpec, SecurityCard
from devices.security_card.random import DEFAULT_RANDOM, RandomBytes, uniform_below

DEFAULT_CHALLENGE_TTL_SECONDS = 180.0
CHALLENGE_ID_BYTES = 16
MAX_ANSWER_DIGITS = 16


@dataclass(frozen=True)
class DigitRequest:
    """Which digits (0-based positions) of the code printed as ``number`` are asked."""

    number: int
    positions: tuple[int, ...]

    def validate(self, spec: CardSpec) -> None:
        if not 1 <= self.number <= spec.code_count:
            raise BadRequest(f"code number must be between 1 and {spec.code_count}")
        if not self.positions:
            raise BadRequest("a challenge asks at least one digit of each code")
        if len(set(self.positions)) != len(self.positions):
            raise BadRequest("digit positions must be distinct")
        for pos in self.positions:
            if not 0 <= pos < spec.code_digits:
                raise BadRequest(
                    f"digit positions must be between 1 and {spec.code_digits}"
                )


@dataclass(frozen=True)
class ChallengePolicy:
    """Which digits are asked and for how long a challenge may be answered.

    By default the first two digits of the first code and the last two digits of
    the second code (``None`` positions mean "the default for this card").
    """

    ttl_seconds: float = DEFAULT_CHALLENGE_TTL_SECONDS
    first_positions: tuple[int, ...] | None = None
    second_positions: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.ttl_seconds > 0:
            raise BadRequest("challenge lifetime must be positive")

    def positions_for(self, spec: CardSpec) -> tuple[tuple[int, ...], tuple[int, ...]]:
        first = self.first_positions if self.first_positions is not None else (0, 1)
        second = (
            self.second_positions
            if self.second_positions is not None
            else (spec.code_digits - 2, spec.code_digits - 1)
        )
        return first, second


@dataclass(frozen=True)
class Challenge:
    """A single-use question about one card, valid until ``expires_at`` (epoch seconds)."""

    id: str
    serial: str
    first: DigitRequest
    second: DigitRequest
    issued_at: float
    expires_at: float

    @property
    def answer_length(self) -> int:
        return len(self.first.positions) + len(self.second.positions)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def validate(self, spec: CardSpec) -> None:
        self.first.validate(spec)
        self.second.validate(spec)
        if self.first.number == self.second.number:
            raise BadRequest("a challenge names two distinct code numbers")
        if self.answer_length > MAX_ANSWER_DIGITS:
            raise BadRequest("a challenge asks too many digits")


def new_challenge_id(random_bytes: RandomBytes = DEFAULT_RANDOM) -> str:
    return random_bytes(CHALLENGE_ID_BYTES).hex()


def is_challenge_id(value: str) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 2 * CHALLENGE_ID_BYTES
        and all(c in "0123456789abcdef" for c in value)
    )


def new_challenge(
    serial: str,
    spec: CardSpec,
    now: float,
    policy: ChallengePolicy | None = None,
    random_bytes: RandomBytes = DEFAULT_RANDOM,
) -> Challenge:
    """Pick two distinct code numbers uniformly at random and ask the policy's digits."""
    policy = policy or ChallengePolicy()
    first_pos, second_pos = policy.positions_for(spec)
    first = uniform_below(random_bytes, spec.code_count) + 1
    # a uniform choice among the other numbers
    second = uniform_below(random_bytes, spec.code_count - 1) + 1
    if second >= first:
        second += 1
    challenge = Challenge(
        id=new_challenge_id(random_bytes),
        serial=serial,
        first=DigitRequest(first, first_pos),
        second=DigitRequest(second, second_pos),
        issued_at=now,
        expires_at=now + policy.ttl_seconds,
    )
    challenge.validate(spec)
    return challenge


def expected_answer(card: SecurityCard, challenge: Challenge) -> str:
    """The digits a holder of ``card`` types for ``challenge``, in order."""
    challenge.validate(card.spec)
    first = card.code(challenge.first.number)
    second = card.code(challenge.second.number)
    return "".join(first[p] for p in challenge.first.positions) + "".join(
        second[p] for p in challenge.second.positions
    )


def validate_answer_format(answer: str, length: int | None = None) -> str:
    """Raise BadRequest unless ``answer`` is ASCII digits (of ``length``, if given)."""
    if not isinstance(answer, str) or not answer:
        raise BadRequest("answer must not be empty: give the asked digits")
    if len(answer) > MAX_ANSWER_DIGITS:
        raise BadRequest(f"answer must be at most {MAX_ANSWER_DIGITS} digits")
    if not (answer.isascii() and answer.isdigit()):
        raise BadRequest("answer must contain only the digits 0-9")
    if length is not None and len(answer) != length:
        raise BadRequest(f"answer must be exactly {length} digits")
    return answer


def answers_match(expected: str, answer: str) -> bool:
    """Constant-time comparison of two digit strings."""
    return hmac.compare_digest(expected.encode("ascii"), answer.encode("ascii"))
