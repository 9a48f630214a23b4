"""Verification rules and card lifecycle states.

The rules are pure: the caller reads the card and the challenge under a lock,
asks :func:`decide`, and applies the verdict in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, unique

from devices.errors import BadRequest, WrongState
from devices.security_card.challenge import answers_match

DEFAULT_MAX_FAILURES = 3  # DOMAIN §2: identity inputs, 3 consecutive wrong entries


@unique
class CardState(IntEnum):
    ACTIVE = 1
    RESTRICTED = 2  # failure limit reached; a branch must reset it
    REVOKED = 3
    REPLACED = 4


CARD_STATE_NAMES = {s: s.name.lower() for s in CardState}
CARD_STATE_BY_NAME = {v: k for k, v in CARD_STATE_NAMES.items()}


@unique
class Outcome(IntEnum):
    ACCEPTED = 1
    WRONG_ANSWER = 2
    CARD_RESTRICTED = 3
    CARD_REVOKED = 4
    CARD_REPLACED = 5
    CHALLENGE_EXPIRED = 6
    CHALLENGE_USED = 7


@unique
class ChallengeState(IntEnum):
    OPEN = 1
    USED = 2
    EXPIRED = 3


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    evaluated: bool  # the answer was compared
    count_failure: bool  # add one to the consecutive failure counter
    reset_failures: bool  # a success clears the counter
    failures: int  # consecutive failures after this verdict
    state: CardState  # card state after this verdict
    attempts_left: int

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


_REFUSED_STATES = {
    CardState.RESTRICTED: Outcome.CARD_RESTRICTED,
    CardState.REVOKED: Outcome.CARD_REVOKED,
    CardState.REPLACED: Outcome.CARD_REPLACED,
}


def decide(
    *,
    state: CardState,
    failures: int,
    challenge: ChallengeState,
    expected: str,
    answer: str,
    max_failures: int = DEFAULT_MAX_FAILURES,
) -> Verdict:
    """The verdict for ``answer`` given the card and challenge as read under lock.

    Order matters: a used or expired challenge is refused before anything else,
    a card that is not active is refused before the answer is looked at (the
    same verdict whether the digits were right or wrong), and only then are the
    digits compared in constant time.
    """
    if max_failures < 1:
        raise BadRequest("failure limit must be at least 1")
    left = max(0, max_failures - failures)
    if challenge is ChallengeState.USED:
        return Verdict(Outcome.CHALLENGE_USED, False, False, False, failures, state, left)
    if challenge is ChallengeState.EXPIRED:
        return Verdict(Outcome.CHALLENGE_EXPIRED, False, False, False, failures, state, left)
    refused = _REFUSED_STATES.get(state)
    if refused is not None:
        return Verdict(refused, False, False, False, failures, state, left)
    if len(expected) == len(answer) and answers_match(expected, answer):
        return Verdict(Outcome.ACCEPTED, True, False, True, 0, state, max_failures)
    new_failures = failures + 1
    new_state = CardState.RESTRICTED if new_failures >= max_failures else state
    return Verdict(
        Outcome.WRONG_ANSWER,
        True,
        True,
        False,
        new_failures,
        new_state,
        max(0, max_failures - new_failures),
    )


def check_reset(state: CardState) -> None:
    """A branch reset clears the counter of an active or restricted card."""
    if state in (CardState.REVOKED, CardState.REPLACED):
        raise WrongState(f"card is {CARD_STATE_NAMES[state]}; it cannot be reset")


def check_revoke(state: CardState) -> None:
    if state in (CardState.REVOKED, CardState.REPLACED):
        raise WrongState(f"card is already {CARD_STATE_NAMES[state]}")


def check_replace(state: CardState) -> None:
    if state in (CardState.REVOKED, CardState.REPLACED):
        raise WrongState(f"card is {CARD_STATE_NAMES[state]}; it cannot be replaced")


def check_reprint(state: CardState) -> None:
    if state is not CardState.ACTIVE:
        raise WrongState(
            f"card is {CARD_STATE_NAMES[state]}; only an active card is printed again"
        )
