"""Security cards (보안카드): codes, challenges, verification rules, lifecycle.

Pure domain code: no gRPC, no storage, no braille library.
"""

from __future__ import annotations

from devices.security_card.card import (
    DEFAULT_CODE_COUNT,
    DEFAULT_CODE_DIGITS,
    CardSpec,
    SecurityCard,
    new_serial,
    validate_serial,
)
from devices.security_card.challenge import (
    DEFAULT_CHALLENGE_TTL_SECONDS,
    Challenge,
    ChallengePolicy,
    DigitRequest,
    answers_match,
    expected_answer,
    is_challenge_id,
    new_challenge,
    validate_answer_format,
)
from devices.security_card.prompt import (
    challenge_text,
    describe_positions,
    outcome_text,
)
from devices.security_card.verification import (
    DEFAULT_MAX_FAILURES,
    CardState,
    ChallengeState,
    Outcome,
    Verdict,
    check_replace,
    check_reprint,
    check_reset,
    check_revoke,
    decide,
)

__all__ = [
    "DEFAULT_CHALLENGE_TTL_SECONDS",
    "DEFAULT_CODE_COUNT",
    "DEFAULT_CODE_DIGITS",
    "DEFAULT_MAX_FAILURES",
    "CardSpec",
    "CardState",
    "Challenge",
    "ChallengePolicy",
    "ChallengeState",
    "DigitRequest",
    "Outcome",
    "SecurityCard",
    "Verdict",
    "answers_match",
    "challenge_text",
    "check_replace",
    "check_reprint",
    "check_reset",
    "check_revoke",
    "decide",
    "describe_positions",
    "expected_answer",
    "is_challenge_id",
    "new_challenge",
    "new_serial",
    "outcome_text",
    "validate_answer_format",
    "validate_serial",
]
