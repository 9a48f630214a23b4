"""The braille security card (점자 보안카드) laid out for an embosser.

Text is translated by a translator passed in (liblouis with the Korean grade 2
table in production): Korean labels and instructions contract, numbers get the
number sign, so "번호 07: 4821" reads as the print card does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from devices.errors import BadRequest
from devices.security_card.braille.cells import BLANK, FULL_CELL, is_six_dot, to_brf
from devices.security_card.braille.layout import (
    CARD_LAYOUT,
    PAGE_LAYOUT,
    BrailleDocument,
    LayoutSpec,
    paginate,
    wrap,
)
from devices.security_card.card import SecurityCard

NUMBER_SIGN = "\u283c"  # ⠼ dots 3456
COLUMN_GAP = 2

TITLE = "보안카드"
SERIAL_LABEL = "일련번호"
CODE_LABEL = "번호"
INSTRUCTIONS = (
    "은행이 번호와 자리를 물으면 그 번호의 해당 자리 숫자를 차례로 입력하십시오. "
    "이 카드를 다른 사람에게 알려 주지 마십시오."
)


TEXT_CACHE_SIZE = 4096


class BrailleTranslator(Protocol):
    """Print text -> Unicode-braille cells (one character per cell)."""

    def to_unicode(self, text: str) -> str: ...


@dataclass(frozen=True)
class BrailleText:
    """One text in three forms: print (for a screen reader), Unicode braille, BRF."""

    text: str
    braille: str
    brf: str


class BrailleCardLayout:
    """Compose security cards and prompts as braille with a translator."""

    def __init__(self, translator: BrailleTranslator) -> None:
        self._translator = translator
        # Prompts and outcome messages repeat (two code numbers of 35, a few outcomes): their
        # translations are kept, so a challenge does not pay liblouis each time. Never codes.
        self._texts: dict[str, BrailleText] = {}

    def cells(self, text: str) -> str:
        cells = self._translator.to_unicode(text)
        if not is_six_dot(cells):
            raise BadRequest("text has characters with no six-dot braille form")
        return cells

    def text(self, text: str) -> BrailleText:
        """A prompt or message in braille (cached: prompts contain no secret)."""
        known = self._texts.get(text)
        if known is not None:
            return known
        cells = self.cells(text)
        translated = BrailleText(text=text, braille=cells, brf=to_brf(cells))
        if len(self._texts) >= TEXT_CACHE_SIZE:
            self._texts.clear()
        self._texts[text] = translated
        return translated

    def _code_cells(self, number: int, code: str | None, digits: int, label: bool) -> str:
        prefix = f"{CODE_LABEL} {number:02d}:" if label else f"{number:02d}:"
        if code is None:
            return self.cells(prefix) + BLANK + NUMBER_SIGN + FULL_CELL * digits
        return self.cells(f"{prefix} {code}")

    def _page_label(self, page: int, pages: int) -> str:
        return self.cells(str(page))

    def card(
        self, card: SecurityCard, spec: LayoutSpec = CARD_LAYOUT, masked: bool = False
    ) -> BrailleDocument:
        """Card-sized faces: the serial and face number on top, then "07: 4821" entries,
        two to a line where they fit.  ``masked`` hides the codes (full cells)."""
        digits = card.spec.code_digits
        entries = [
            self._code_cells(n, None if masked else code, digits, label=False)
            for n, code in card.numbered()
        ]
        return paginate(spec, self.cells(card.serial), _columns(entries, spec), self._page_label)

    def page(
        self, card: SecurityCard, spec: LayoutSpec = PAGE_LAYOUT, masked: bool = False
    ) -> BrailleDocument:
        """Full pages: title and serial with the page number, the instructions, then one
        "번호 07: 4821" entry per line."""
        digits = card.spec.code_digits
        header = self.cells(f"{TITLE} {SERIAL_LABEL} {card.serial}")
        body = wrap(self.cells(INSTRUCTIONS), spec.cells_per_line)
        body.append("")
        body.extend(
            self._code_cells(n, None if masked else code, digits, label=True)
            for n, code in card.numbered()
        )
        return paginate(spec, header, body, self._page_label)

    def document(
        self, card: SecurityCard, layout: str = CARD_LAYOUT.name, masked: bool = False
    ) -> BrailleDocument:
        if layout == CARD_LAYOUT.name:
            return self.card(card, masked=masked)
        if layout == PAGE_LAYOUT.name:
            return self.page(card, masked=masked)
        raise BadRequest(f"unknown braille layout {layout!r} (card or page)")


def _columns(entries: list[str], spec: LayoutSpec) -> list[str]:
    """Two entries side by side when both fit on a line, else one per line."""
    widest = max(len(e) for e in entries)
    if widest > spec.cells_per_line:
        raise BadRequest("a code entry does not fit on a line of this layout")
    if 2 * widest + COLUMN_GAP > spec.cells_per_line:
        return list(entries)
    col = widest + COLUMN_GAP
    lines = []
    for i in range(0, len(entries), 2):
        left = entries[i]
        if i + 1 < len(entries):
            lines.append(left + BLANK * (col - len(left)) + entries[i + 1])
        else:
            lines.append(left)
    return lines
