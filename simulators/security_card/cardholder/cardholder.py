"""A virtual blind cardholder: reads an embossed security card by touch and answers.

It knows only braille as a reader does: the number sign (⠼, dots 3456) starts a
number, the cells a-j (dots 1, 12, 14, 145, 15, 124, 1245, 125, 24, 245) are the
digits 1-9 and 0, and a code entry is a number followed by a colon (⠐⠂) and a
second number.  Its digit table is its own: it does not use liblouis (whose
Korean tables cannot back-translate) nor authd's layout code.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

# dot bits: dot 1 = 1, dot 2 = 2, dot 3 = 4, dot 4 = 8, dot 5 = 16, dot 6 = 32
_D1, _D2, _D3, _D4, _D5, _D6 = 1, 2, 4, 8, 16, 32
NUMBER_SIGN_DOTS = _D3 | _D4 | _D5 | _D6
COLON_DOTS = (_D5, _D2)  # Korean braille colon: ⠐⠂
HYPHEN_DOTS = _D3 | _D6
DIGIT_BY_DOTS = {
    _D1: "1",
    _D1 | _D2: "2",
    _D1 | _D4: "3",
    _D1 | _D4 | _D5: "4",
    _D1 | _D5: "5",
    _D1 | _D2 | _D4: "6",
    _D1 | _D2 | _D4 | _D5: "7",
    _D1 | _D2 | _D5: "8",
    _D2 | _D4: "9",
    _D2 | _D4 | _D5: "0",
}

# Braille ASCII as an embosser takes it: the character for each six-dot pattern.
_ASCII_BRAILLE = " A1B'K2L@CIF/MSP\"E3H9O6R^DJG>NTQ,*5<-U8V.%[$+X!&;:4\\0Z7(_?W]#Y)="
_DOTS_BY_ASCII = {ch: bits for bits, ch in enumerate(_ASCII_BRAILLE)}

UNREADABLE = "?"
_ANSWER_PROMPT_RE = re.compile(r"번호\s*(\d+)의\s*(앞|뒤)\s*두\s*자리")


@dataclass
class ReadCard:
    """What the cardholder felt: the numbered codes."""

    codes: dict[int, str] = field(default_factory=dict)

    def code(self, number: int) -> str:
        return self.codes.get(number, "")


def feel_brf(data: bytes) -> list[list[int]]:
    """BRF bytes -> lines of dot patterns (page breaks are just more lines)."""
    lines = []
    text = data.decode("ascii", "replace").replace("\f", "\n").replace("\r", "")
    for raw in text.split("\n"):
        if not raw:
            continue
        lines.append([_DOTS_BY_ASCII.get(ch.upper(), -1) for ch in raw])
    return lines


def _read_numbers(cells: list[int]) -> list[tuple[str, int, int]]:
    """Numbers on one line: (digits, start index of the number sign, end index)."""
    found = []
    i = 0
    while i < len(cells):
        if cells[i] != NUMBER_SIGN_DOTS:
            i += 1
            continue
        start = i
        i += 1
        digits = []
        while i < len(cells) and cells[i] not in (0, NUMBER_SIGN_DOTS):
            if cells[i] in DIGIT_BY_DOTS:
                digits.append(DIGIT_BY_DOTS[cells[i]])
            elif (cells[i], cells[i + 1] if i + 1 < len(cells) else None) == COLON_DOTS:
                break
            elif cells[i] == HYPHEN_DOTS:
                digits.append("-")
            else:
                digits.append(UNREADABLE)
            i += 1
        found.append(("".join(digits), start, i))
    return found


def read_card(data: bytes) -> ReadCard:
    """Read every "NN: CCCC" entry of an embossed card (card or page layout)."""
    card = ReadCard()
    for line in feel_brf(data):
        numbers = _read_numbers(line)
        for (first, _, end), (second, _, _) in itertools.pairwise(numbers):
            after = tuple(line[end : end + 2])
            if after == COLON_DOTS and first.isdigit():
                card.codes.setdefault(int(first), second)
    return card


@dataclass(frozen=True)
class Question:
    first_number: int
    first_positions: tuple[int, ...]
    second_number: int
    second_positions: tuple[int, ...]


class VirtualCardholder:
    """A blind customer holding an embossed card."""

    def __init__(self, embossed: bytes) -> None:
        self.card = read_card(embossed)

    def answer(self, question: Question) -> str:
        """The digits asked, as read from the braille; an unreadable cell is a guess of 0."""
        first = self.card.code(question.first_number)
        second = self.card.code(question.second_number)
        digits = [_pick(first, p) for p in question.first_positions]
        digits += [_pick(second, p) for p in question.second_positions]
        return "".join(digits)

    def answer_prompt(self, prompt: str, code_digits: int = 4) -> str:
        """Answer from the spoken prompt text, as with a screen reader."""
        parts = _ANSWER_PROMPT_RE.findall(prompt)
        if len(parts) != 2:
            raise ValueError("the cardholder does not understand the prompt")
        positions = []
        for _, side in parts:
            positions.append((0, 1) if side == "앞" else (code_digits - 2, code_digits - 1))
        return self.answer(
            Question(int(parts[0][0]), positions[0], int(parts[1][0]), positions[1])
        )


def _pick(code: str, position: int) -> str:
    if 0 <= position < len(code) and code[position].isdigit():
        return code[position]
    return "0"
