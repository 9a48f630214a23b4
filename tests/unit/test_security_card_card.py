from __future__ import annotations

import itertools
from collections import Counter

import pytest

from devices.errors import BadRequest
from devices.security_card import (
    CardSpec,
    ChallengePolicy,
    DigitRequest,
    SecurityCard,
    challenge_text,
    describe_positions,
    expected_answer,
    is_challenge_id,
    new_challenge,
    new_serial,
    validate_answer_format,
    validate_serial,
)
from devices.security_card.challenge import Challenge
from devices.security_card.random import random_digits, uniform_below

SERIAL = "4821-0937-1234"


def counter_bytes(start: int = 0):
    """A deterministic byte source (for shape tests only)."""
    counter = itertools.count(start)

    def source(n: int) -> bytes:
        return bytes(next(counter) % 256 for _ in range(n))

    return source


def test_generated_card_has_35_four_digit_codes() -> None:
    card = SecurityCard.generate(SERIAL)
    assert len(card.codes) == 35
    assert all(len(c) == 4 and c.isdigit() for c in card.codes)
    assert card.code(1) == card.codes[0]
    assert card.code(35) == card.codes[34]


def test_card_shape_is_configurable() -> None:
    card = SecurityCard.generate(SERIAL, CardSpec(code_count=30, code_digits=6))
    assert len(card.codes) == 30
    assert {len(c) for c in card.codes} == {6}


def test_codes_come_from_the_random_source_passed_in() -> None:
    a = SecurityCard.generate(SERIAL, random_bytes=counter_bytes(7))
    b = SecurityCard.generate(SERIAL, random_bytes=counter_bytes(7))
    c = SecurityCard.generate(SERIAL, random_bytes=counter_bytes(8))
    assert a.codes == b.codes
    assert a.codes != c.codes


def test_repr_never_shows_codes() -> None:
    card = SecurityCard.generate("SC-ABCD")
    assert "codes" not in repr(card)
    assert all(code not in repr(card) for code in card.codes)


def test_random_digits_are_roughly_uniform() -> None:
    digits = random_digits(__import__("secrets").token_bytes, 20000)
    counts = Counter(digits)
    assert set(counts) == set("0123456789")
    assert all(1700 < n < 2300 for n in counts.values())


def test_uniform_below_rejects_biased_values() -> None:
    # 0xFFFFFFFF is above the largest multiple of 35 below 2**32: it must be skipped
    values = iter([b"\xff\xff\xff\xff", (36).to_bytes(4, "big")])
    assert uniform_below(lambda n: next(values), 35) == 1


def test_codes_round_trip_through_bytes() -> None:
    card = SecurityCard.generate(SERIAL)
    again = SecurityCard.from_codes_bytes(SERIAL, card.codes_bytes(), card.spec)
    assert again == card
    with pytest.raises(BadRequest):
        SecurityCard.from_codes_bytes(SERIAL, card.codes_bytes()[:-1], card.spec)


@pytest.mark.parametrize(
    "codes",
    [
        ("1234",),  # too few
        ("1234", "123"),  # unequal
        ("12a4", "1234"),  # not digits
        ("\uff11\uff12\uff13\uff14", "1234"),  # full-width digits
        ("1", "2"),  # too short
    ],
)
def test_bad_codes_are_refused(codes: tuple[str, ...]) -> None:
    with pytest.raises(BadRequest):
        SecurityCard(SERIAL, codes)


@pytest.mark.parametrize("serial", ["", "ab", "4821 0937", "-123", "x" * 40, "가나다라"])
def test_bad_serials_are_refused(serial: str) -> None:
    with pytest.raises(BadRequest):
        validate_serial(serial)


def test_new_serial_is_valid() -> None:
    serial = new_serial()
    assert validate_serial(serial) == serial
    assert len(serial) == 14


@pytest.mark.parametrize("spec", [{"code_count": 1}, {"code_count": 100}, {"code_digits": 1},
                                  {"code_digits": 9}])
def test_bad_specs_are_refused(spec: dict[str, int]) -> None:
    with pytest.raises(BadRequest):
        CardSpec(**spec)


def test_challenge_names_two_distinct_codes_and_default_digits() -> None:
    spec = CardSpec()
    seen_pairs = set()
    for _ in range(400):
        ch = new_challenge(SERIAL, spec, now=1000.0)
        assert ch.first.number != ch.second.number
        assert 1 <= ch.first.number <= 35 and 1 <= ch.second.number <= 35
        assert ch.first.positions == (0, 1)
        assert ch.second.positions == (2, 3)
        assert ch.expires_at == 1000.0 + 180.0
        assert is_challenge_id(ch.id)
        seen_pairs.add((ch.first.number, ch.second.number))
    assert len(seen_pairs) > 250  # spread over the card, not stuck on a few numbers


def test_two_code_card_always_asks_both() -> None:
    spec = CardSpec(code_count=2)
    for _ in range(20):
        ch = new_challenge(SERIAL, spec, now=0.0)
        assert {ch.first.number, ch.second.number} == {1, 2}


def test_challenge_policy_changes_ttl_and_digits() -> None:
    policy = ChallengePolicy(ttl_seconds=30, first_positions=(1, 3), second_positions=(0,))
    ch = new_challenge(SERIAL, CardSpec(), now=0.0, policy=policy)
    assert ch.expires_at == 30
    assert ch.first.positions == (1, 3)
    assert ch.second.positions == (0,)
    assert ch.answer_length == 3
    assert ch.expired(30.0) and not ch.expired(29.9)


def test_expected_answer_picks_the_asked_digits() -> None:
    codes = tuple(f"{i:02d}{(i * 7) % 100:02d}" for i in range(1, 36))
    card = SecurityCard(SERIAL, codes)
    ch = Challenge("0" * 32, SERIAL, DigitRequest(7, (0, 1)), DigitRequest(23, (2, 3)), 0, 60)
    assert card.code(7) == "0749"
    assert card.code(23) == "2361"
    assert expected_answer(card, ch) == "0761"


def test_same_number_twice_is_not_a_challenge() -> None:
    card = SecurityCard.generate(SERIAL)
    ch = Challenge("0" * 32, SERIAL, DigitRequest(3, (0, 1)), DigitRequest(3, (2, 3)), 0, 60)
    with pytest.raises(BadRequest, match="distinct"):
        expected_answer(card, ch)


@pytest.mark.parametrize("positions", [(), (4,), (0, 0), (-1,)])
def test_bad_positions_are_refused(positions: tuple[int, ...]) -> None:
    with pytest.raises(BadRequest):
        DigitRequest(1, positions).validate(CardSpec())


@pytest.mark.parametrize("answer", ["", "12a4", "12 4", "١٢٣٤", "1" * 17])
def test_answer_format_rejects_non_digits(answer: str) -> None:
    with pytest.raises(BadRequest):
        validate_answer_format(answer)


def test_answer_format_checks_length() -> None:
    assert validate_answer_format("0761", 4) == "0761"
    with pytest.raises(BadRequest, match="exactly 4"):
        validate_answer_format("076", 4)


def test_prompt_text_reads_like_a_bank_prompt() -> None:
    ch = Challenge("0" * 32, SERIAL, DigitRequest(7, (0, 1)), DigitRequest(23, (2, 3)), 0, 60)
    assert challenge_text(ch, 4) == (
        "보안카드 번호 07의 앞 두 자리와 번호 23의 뒤 두 자리를 차례로 입력하십시오."
    )
    assert describe_positions((0, 2), 4) == "첫째, 셋째 자리"
    assert describe_positions((0, 1, 2, 3), 4) == "네 자리 모두"
