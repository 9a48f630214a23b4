"""Korean wording of challenges and outcomes, for screen readers and braille.

The text here is plain Korean; the braille form is the same text translated
with the Korean braille table (see ``devices.security_card.braille``).
"""

from __future__ import annotations

from devices.security_card.challenge import Challenge, DigitRequest
from devices.security_card.verification import Outcome

_COUNT_WORDS = {1: "한", 2: "두", 3: "세", 4: "네", 5: "다섯", 6: "여섯", 7: "일곱", 8: "여덟"}
_ORDINALS = {
    0: "첫째",
    1: "둘째",
    2: "셋째",
    3: "넷째",
    4: "다섯째",
    5: "여섯째",
    6: "일곱째",
    7: "여덟째",
}


def describe_positions(positions: tuple[int, ...], code_digits: int) -> str:
    """``(0, 1)`` -> "앞 두 자리", ``(2, 3)`` of four -> "뒤 두 자리", else ordinals."""
    n = len(positions)
    if positions == tuple(range(n)) and n < code_digits:
        return f"앞 {_COUNT_WORDS[n]} 자리"
    if positions == tuple(range(code_digits - n, code_digits)) and n < code_digits:
        return f"뒤 {_COUNT_WORDS[n]} 자리"
    if positions == tuple(range(code_digits)):
        return "네 자리 모두" if code_digits == 4 else f"{_COUNT_WORDS[code_digits]} 자리 모두"
    return ", ".join(_ORDINALS[p] for p in positions) + " 자리"


def _part(request: DigitRequest, code_digits: int) -> str:
    return f"번호 {request.number:02d}의 {describe_positions(request.positions, code_digits)}"


def challenge_text(challenge: Challenge, code_digits: int) -> str:
    """What the customer is asked, e.g.
    "보안카드 번호 07의 앞 두 자리와 번호 23의 뒤 두 자리를 차례로 입력하십시오."
    """
    return (
        f"보안카드 {_part(challenge.first, code_digits)}와 "
        f"{_part(challenge.second, code_digits)}를 차례로 입력하십시오."
    )


OUTCOME_TEXT = {
    Outcome.ACCEPTED: "보안카드 확인이 완료되었습니다.",
    Outcome.WRONG_ANSWER: "보안카드 번호가 맞지 않습니다.",
    Outcome.CARD_RESTRICTED: (
        "보안카드 입력 오류 횟수를 초과하여 이용이 제한되었습니다. 영업점을 방문하십시오."
    ),
    Outcome.CARD_REVOKED: "해지된 보안카드입니다. 영업점을 방문하십시오.",
    Outcome.CARD_REPLACED: "재발급으로 사용할 수 없는 보안카드입니다. 새 보안카드를 사용하십시오.",
    Outcome.CHALLENGE_EXPIRED: "입력 시간이 지났습니다. 다시 시도하십시오.",
    Outcome.CHALLENGE_USED: "이미 사용한 요청입니다. 다시 시도하십시오.",
}


def outcome_text(outcome: Outcome, attempts_left: int, restricted: bool) -> str:
    """The reason told to the user (EFT art. 14(3)), never a secret."""
    if outcome is Outcome.WRONG_ANSWER:
        if restricted:
            return OUTCOME_TEXT[Outcome.CARD_RESTRICTED]
        return f"{OUTCOME_TEXT[outcome]} 남은 입력 횟수는 {attempts_left}회입니다."
    return OUTCOME_TEXT[outcome]
