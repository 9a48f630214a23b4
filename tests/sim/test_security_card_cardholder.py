"""A braille card embossed through the simulator, read back by the virtual cardholder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devices.security_card import (
    SecurityCard,
    challenge_text,
    expected_answer,
    new_challenge,
)
from devices.security_card.braille import BrailleCardLayout, flip_dot, from_brf, to_brf
from drivers.braille import LiblouisTranslator
from drivers.embosser import Embosser
from simulators.security_card.cardholder import Question, VirtualCardholder, read_card
from simulators.security_card.embosser import EmbosserSimulator

SERIAL = "4821-0937-1234"
# the one-dot change that turns each braille digit into another digit
DIGIT_NEIGHBOUR_DOT = {"1": 2, "2": 2, "3": 2, "6": 2, "4": 2, "7": 2, "5": 2, "8": 2,
                       "9": 5, "0": 5}


@pytest.fixture(scope="module")
def layout() -> BrailleCardLayout:
    return BrailleCardLayout(LiblouisTranslator())


@pytest.fixture()
def sim() -> Iterator[EmbosserSimulator]:
    with EmbosserSimulator() as s:
        yield s


@pytest.mark.parametrize("kind", ["card", "page"])
def test_cardholder_reads_every_code(layout: BrailleCardLayout, sim: EmbosserSimulator,
                                     kind: str) -> None:
    card = SecurityCard.generate(SERIAL)
    Embosser.open(sim.address).emboss("card", layout.document(card, kind).to_brf())
    read = read_card(sim.last_job().data)
    assert read.codes == dict(card.numbered())


def test_cardholder_passes_a_challenge_and_a_flipped_dot_fails(
    layout: BrailleCardLayout, sim: EmbosserSimulator
) -> None:
    card = SecurityCard.generate(SERIAL)
    Embosser.open(sim.address).emboss("card", layout.card(card).to_brf())
    challenge = new_challenge(card.serial, card.spec, now=0.0)
    prompt = challenge_text(challenge, card.spec.code_digits)

    holder = VirtualCardholder(sim.last_job().data)
    assert holder.answer_prompt(prompt) == expected_answer(card, challenge)

    # one dot of the first asked digit comes out wrong on paper
    damaged = flip_one_dot(layout, sim.last_job().data, card, challenge.first.number,
                           challenge.first.positions[0])
    sim.tamper(0, damaged)
    misread = VirtualCardholder(sim.last_job().data)
    answer = misread.answer_prompt(prompt)
    assert answer != expected_answer(card, challenge)
    assert len(answer) == 4 and answer.isdigit()


def test_cardholder_answers_structured_questions(layout: BrailleCardLayout) -> None:
    card = SecurityCard.generate(SERIAL)
    holder = VirtualCardholder(layout.page(card).to_brf())
    q = Question(3, (1, 3), 35, (0,))
    assert holder.answer(q) == card.code(3)[1] + card.code(3)[3] + card.code(35)[0]


def test_cardholder_does_not_understand_nonsense() -> None:
    holder = VirtualCardholder(b"")
    with pytest.raises(ValueError):
        holder.answer_prompt("아무 말")


def flip_one_dot(layout: BrailleCardLayout, brf: bytes, card: SecurityCard, number: int,
                 position: int) -> bytes:
    """Flip one dot of digit ``position`` of code ``number`` in the embossed BRF."""
    text = brf.decode("ascii")
    entry = to_brf(layout.cells(f"{number:02d}: {card.code(number)}"))
    at = text.index(entry)
    digit_at = at + len(entry) - card.spec.code_digits + position
    digit = card.code(number)[position]
    cell = from_brf(text[digit_at])
    flipped = to_brf(flip_dot(cell, DIGIT_NEIGHBOUR_DOT[digit]))
    assert flipped != text[digit_at]
    return (text[:digit_at] + flipped + text[digit_at + 1:]).encode("ascii")
