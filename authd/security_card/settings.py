"""The ``[security_card]`` configuration section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from authd.ratelimit import Rate
from devices.errors import InvalidArgument
from devices.security_card import (
    DEFAULT_CHALLENGE_TTL_SECONDS,
    DEFAULT_CODE_COUNT,
    DEFAULT_CODE_DIGITS,
    DEFAULT_MAX_FAILURES,
    CardSpec,
    ChallengePolicy,
)
from devices.security_card.braille import LAYOUTS

SIMULATOR = "simulator"
SECTION = "security_card"


@dataclass(frozen=True)
class SecurityCardSettings:
    max_failures: int = DEFAULT_MAX_FAILURES  # DOMAIN §2: identity inputs, 3
    challenge_ttl_seconds: float = DEFAULT_CHALLENGE_TTL_SECONDS
    code_count: int = DEFAULT_CODE_COUNT
    code_digits: int = DEFAULT_CODE_DIGITS
    # digits asked (from 1); empty: the first two of the first code, the last two of the second
    first_digits: tuple[int, ...] = ()
    second_digits: tuple[int, ...] = ()
    # where jobs go: "simulator" (an in-process simulator, when simulators are on),
    # socket://HOST:9100, file:///dev/usb/lp0, dir:///spool/path, lp://QUEUE, or "" (none)
    embosser: str = SIMULATOR
    printer: str = SIMULATOR
    device_timeout_seconds: float = 10.0
    braille_table: str = "ko-g2.ctb"
    default_layout: str = "card"
    # A card keeps its most recent challenges (open, answered or expired) only: starting one
    # more deletes its oldest, so no caller can grow the store without bound.
    max_challenges_per_card: int = 5
    # Per-institution rate limits of each server process (authd/ratelimit.py); 0: off.
    challenge_per_second: float = 50.0
    challenge_burst: int = 200
    answer_per_second: float = 50.0
    answer_burst: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.max_failures <= 100:
            raise InvalidArgument("security_card.max_failures must be 1..100")
        if (isinstance(self.max_challenges_per_card, bool)
                or not isinstance(self.max_challenges_per_card, int)
                or not 1 <= self.max_challenges_per_card <= 100):
            raise InvalidArgument("security_card.max_challenges_per_card must be 1..100")
        self.challenge_rate.check(f"{SECTION}.challenge_per_second")
        self.answer_rate.check(f"{SECTION}.answer_per_second")
        if not 0 < self.device_timeout_seconds <= 300:
            raise InvalidArgument("security_card.device_timeout_seconds must be in (0, 300]")
        if self.default_layout not in LAYOUTS:
            raise InvalidArgument("security_card.default_layout must be 'card' or 'page'")
        spec = self.card_spec  # validates counts
        policy = self.challenge_policy
        first, second = policy.positions_for(spec)
        for positions in (first, second):
            if not positions or len(set(positions)) != len(positions) or any(
                not 0 <= p < spec.code_digits for p in positions
            ):
                raise InvalidArgument(
                    f"security_cards digits must be distinct numbers 1..{spec.code_digits}"
                )

    @property
    def challenge_rate(self) -> Rate:
        return Rate(self.challenge_per_second, self.challenge_burst)

    @property
    def answer_rate(self) -> Rate:
        return Rate(self.answer_per_second, self.answer_burst)

    @property
    def card_spec(self) -> CardSpec:
        return CardSpec(code_count=self.code_count, code_digits=self.code_digits)

    @property
    def challenge_policy(self) -> ChallengePolicy:
        return ChallengePolicy(
            ttl_seconds=self.challenge_ttl_seconds,
            first_positions=tuple(d - 1 for d in self.first_digits) or None,
            second_positions=tuple(d - 1 for d in self.second_digits) or None,
        )

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> SecurityCardSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise InvalidArgument(f"unknown setting(s) in [{SECTION}]: {', '.join(unknown)}")
        values = dict(section)
        for key in ("first_digits", "second_digits"):
            if key in values:
                raw = values[key]
                if not isinstance(raw, list | tuple) or not all(isinstance(d, int) for d in raw):
                    raise InvalidArgument(f"{SECTION}.{key} must be a list of digit positions")
                values[key] = tuple(raw)
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidArgument(f"bad [{SECTION}] section: {exc}") from None
