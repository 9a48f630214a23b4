"""The ``[security_card]`` section: card layout, challenges, limits and output devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from authd.ratelimit import Rate, rate_problems
from authd.settings import setting
from devices.errors import BadRequest
from devices.security_card import (
    DEFAULT_CHALLENGE_TTL_SECONDS,
    DEFAULT_CODE_COUNT,
    DEFAULT_CODE_DIGITS,
    DEFAULT_MAX_FAILURES,
    CardSpec,
    ChallengePolicy,
)

SIMULATOR = "simulator"
SECTION = "security_card"


@dataclass(frozen=True)
class SecurityCardSettings:
    SECTION: ClassVar[str] = SECTION
    max_failures: int = setting(DEFAULT_MAX_FAILURES,
                                "consecutive wrong answers that restrict a card (DOMAIN §2: 3)")
    challenge_ttl_seconds: float = setting(DEFAULT_CHALLENGE_TTL_SECONDS,
                                           "how long a challenge may be answered")
    code_count: int = setting(DEFAULT_CODE_COUNT, "numbered codes on a card")
    code_digits: int = setting(DEFAULT_CODE_DIGITS, "digits of each code")
    first_digits: tuple[int, ...] = setting(
        (), "digit positions (from 1) asked of the first code; empty: the first two")
    second_digits: tuple[int, ...] = setting(
        (), "digit positions (from 1) asked of the second code; empty: the last two")
    embosser: str | None = setting(
        None, "where braille cards are embossed: 'simulator' (in process, needs simulators = "
              "true), socket://HOST:9100, file:///dev/usb/lp0, dir:///spool/path, lp://QUEUE, "
              "or '' (none); unset: 'simulator' when simulators are on, else none")
    printer: str | None = setting(None, "where printed cards go (same forms and default as "
                                        "embosser)")
    device_timeout_seconds: float = setting(10.0, "how long an embosser or printer may take")
    braille_table: str = setting("ko-g2.ctb", "liblouis table for Korean braille")
    default_layout: Literal["card", "page"] = setting("card", "braille layout of a card")
    max_challenges_per_card: int = setting(
        5, "challenges (open, answered or expired) a card keeps; starting one more deletes "
           "its oldest, so no caller can grow the store without bound")
    challenge_per_second: float = setting(
        50.0, "per-institution rate limit of each server process on StartChallenge (0: off)")
    challenge_burst: int = setting(200, "burst allowed above challenge_per_second")
    answer_per_second: float = setting(
        50.0, "per-institution rate limit of each server process on VerifyAnswer (0: off)")
    answer_burst: int = setting(200, "burst allowed above answer_per_second")

    @property
    def challenge_rate(self) -> Rate:
        return Rate(self.challenge_per_second, self.challenge_burst)

    @property
    def answer_rate(self) -> Rate:
        return Rate(self.answer_per_second, self.answer_burst)

    def problems(self) -> list[str]:
        out = rate_problems({"challenge_per_second": self.challenge_rate,
                             "answer_per_second": self.answer_rate})
        if not 1 <= self.max_challenges_per_card <= 100:
            out.append("max_challenges_per_card must be 1..100")
        if not 1 <= self.max_failures <= 100:
            out.append("max_failures must be 1..100")
        if not 0 < self.device_timeout_seconds <= 300:
            out.append("device_timeout_seconds must be in (0, 300]")
        try:
            spec = self.card_spec
            first, second = self.challenge_policy.positions_for(spec)
        except BadRequest as exc:
            return [*out, str(exc)]
        for positions in (first, second):
            if not positions or len(set(positions)) != len(positions) or any(
                not 0 <= p < spec.code_digits for p in positions
            ):
                out.append(f"first_digits and second_digits must be distinct numbers "
                           f"1..{spec.code_digits}")
                break
        return out

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


SETTINGS = SecurityCardSettings
