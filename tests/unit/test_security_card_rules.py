from __future__ import annotations

import pytest

from devices.errors import WrongState
from devices.security_card import (
    CardState,
    ChallengeState,
    Outcome,
    check_replace,
    check_reprint,
    check_reset,
    check_revoke,
    decide,
    outcome_text,
)

RIGHT = "0761"
WRONG = "0762"


def verdict(answer: str, state: CardState = CardState.ACTIVE, failures: int = 0,
            challenge: ChallengeState = ChallengeState.OPEN, limit: int = 3):
    return decide(state=state, failures=failures, challenge=challenge, expected=RIGHT,
                  answer=answer, max_failures=limit)


def test_right_answer_passes_and_clears_failures() -> None:
    v = verdict(RIGHT, failures=2)
    assert v.outcome is Outcome.ACCEPTED
    assert v.reset_failures and not v.count_failure
    assert v.failures == 0 and v.attempts_left == 3


def test_wrong_answers_count_until_restricted() -> None:
    failures = 0
    state = CardState.ACTIVE
    for expected_left in (2, 1, 0):
        v = verdict(WRONG, state=state, failures=failures)
        assert v.outcome is Outcome.WRONG_ANSWER and v.count_failure
        assert v.attempts_left == expected_left
        failures, state = v.failures, v.state
    assert failures == 3
    assert state is CardState.RESTRICTED


def test_limit_is_configurable() -> None:
    v = verdict(WRONG, failures=4, limit=5)
    assert v.state is CardState.RESTRICTED
    v = verdict(WRONG, failures=3, limit=5)
    assert v.state is CardState.ACTIVE and v.attempts_left == 1


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (CardState.RESTRICTED, Outcome.CARD_RESTRICTED),
        (CardState.REVOKED, Outcome.CARD_REVOKED),
        (CardState.REPLACED, Outcome.CARD_REPLACED),
    ],
)
def test_refused_cards_answer_the_same_for_right_and_wrong(state: CardState,
                                                           outcome: Outcome) -> None:
    right = verdict(RIGHT, state=state, failures=3)
    wrong = verdict(WRONG, state=state, failures=3)
    assert right == wrong
    assert right.outcome is outcome
    assert not right.evaluated and not right.count_failure and not right.reset_failures


@pytest.mark.parametrize(
    ("challenge", "outcome"),
    [(ChallengeState.USED, Outcome.CHALLENGE_USED),
     (ChallengeState.EXPIRED, Outcome.CHALLENGE_EXPIRED)],
)
def test_dead_challenges_are_refused_without_evaluating(challenge: ChallengeState,
                                                        outcome: Outcome) -> None:
    right = verdict(RIGHT, challenge=challenge, failures=1)
    wrong = verdict(WRONG, challenge=challenge, failures=1)
    assert right == wrong
    assert right.outcome is outcome
    assert not right.evaluated and right.failures == 1


def test_wrong_length_is_wrong_not_an_index_error() -> None:
    assert verdict("07").outcome is Outcome.WRONG_ANSWER


def test_lifecycle_checks() -> None:
    check_reset(CardState.RESTRICTED)
    check_reset(CardState.ACTIVE)
    check_revoke(CardState.RESTRICTED)
    check_replace(CardState.RESTRICTED)
    check_reprint(CardState.ACTIVE)
    for state in (CardState.REVOKED, CardState.REPLACED):
        for check in (check_reset, check_revoke, check_replace, check_reprint):
            with pytest.raises(WrongState):
                check(state)
    with pytest.raises(WrongState):
        check_reprint(CardState.RESTRICTED)


def test_outcome_text_tells_the_reason_without_secrets() -> None:
    assert "2회" in outcome_text(Outcome.WRONG_ANSWER, 2, restricted=False)
    assert "제한" in outcome_text(Outcome.WRONG_ANSWER, 0, restricted=True)
    assert "영업점" in outcome_text(Outcome.CARD_RESTRICTED, 0, restricted=True)
