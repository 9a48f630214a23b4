"""BRF layout: dimensions, form feeds, serial, preview and SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from devices.errors import BadRequest
from devices.security_card import CardSpec, SecurityCard
from devices.security_card.braille import (
    BLANK,
    CARD_LAYOUT,
    PAGE_LAYOUT,
    BrailleCardLayout,
    BrailleDocument,
    LayoutSpec,
    parse_brf,
)
from devices.security_card.braille.layout import paginate, wrap
from drivers.braille import LiblouisTranslator

SERIAL = "4821-0937-1234"
BRF_LINE = re.compile(rb"^[\x20-\x5f]*$")


@pytest.fixture(scope="module")
def layout() -> BrailleCardLayout:
    return BrailleCardLayout(LiblouisTranslator())


@pytest.fixture()
def card() -> SecurityCard:
    return SecurityCard.generate(SERIAL)


def check_brf_dimensions(data: bytes, spec: LayoutSpec) -> list[list[bytes]]:
    assert data.endswith(b"\r\n\f")
    pages = data.split(b"\f")[:-1]
    out = []
    for page in pages:
        assert page.endswith(b"\r\n") or page == b""
        lines = page.split(b"\r\n")[:-1]
        assert 1 <= len(lines) <= spec.lines_per_page
        for line in lines:
            assert len(line) <= spec.cells_per_line
            assert BRF_LINE.match(line), line
        out.append(lines)
    return out


@pytest.mark.parametrize("kind", ["card", "page"])
def test_brf_fits_the_layout(layout: BrailleCardLayout, card: SecurityCard, kind: str) -> None:
    doc = layout.document(card, kind)
    spec = CARD_LAYOUT if kind == "card" else PAGE_LAYOUT
    pages = check_brf_dimensions(doc.to_brf(), spec)
    assert len(pages) == doc.page_count == 2
    assert b"\n" not in doc.to_brf().replace(b"\r\n", b"")  # CR LF line ends only


def test_card_layout_is_card_sized_with_serial_on_every_face(layout: BrailleCardLayout,
                                                             card: SecurityCard) -> None:
    doc = layout.card(card)
    serial_cells = layout.cells(SERIAL)
    for number, page in enumerate(doc.pages, start=1):
        assert page[0].startswith(serial_cells)
        assert page[0].rstrip(BLANK).endswith(layout.cells(str(number)))
        assert len(page[0]) == CARD_LAYOUT.cells_per_line  # page number right-aligned
    # two "NN: CCCC" entries to a line on the card
    assert page_entries(doc) == 35
    assert doc.pages[0][1].count("⠐⠂") == 2


def test_page_layout_has_title_instructions_and_labelled_entries(layout: BrailleCardLayout,
                                                                 card: SecurityCard) -> None:
    doc = layout.page(card)
    header = layout.cells(f"보안카드 일련번호 {SERIAL}")
    assert all(page[0].startswith(header) for page in doc.pages)
    entry = layout.cells(f"번호 07: {card.code(7)}")
    assert entry in doc.pages[0]
    assert entry.startswith("⠘⠾⠚⠥⠀⠼⠚⠛⠐⠂⠀⠼")
    assert page_entries(doc) == 35


def test_masked_layout_shows_no_code(layout: BrailleCardLayout, card: SecurityCard) -> None:
    for doc in (layout.page(card, masked=True), layout.card(card, masked=True)):
        text = "\n".join("\n".join(p) for p in doc.pages)
        entries = re.findall("⠐⠂⠀⠼(.{4})", text)
        assert len(entries) == 35
        assert set(entries) == {"⠿⠿⠿⠿"}
    assert layout.card(card, masked=True).page_count == layout.card(card).page_count


def test_parse_brf_gives_back_the_cells(layout: BrailleCardLayout, card: SecurityCard) -> None:
    doc = layout.card(card)
    pages = parse_brf(doc.to_brf())
    assert [[ln for ln in p] for p in pages] == [[ln.rstrip(BLANK) for ln in p]
                                                   for p in doc.pages]


def test_preview_is_unicode_braille_with_ruled_pages(layout: BrailleCardLayout,
                                                     card: SecurityCard) -> None:
    preview = layout.card(card).preview()
    lines = preview.splitlines()
    assert lines[0].startswith("--- card 1/2")
    braille_lines = [ln for ln in lines if not ln.startswith("-")]
    assert all(len(ln) <= 24 for ln in braille_lines)
    assert all(ch == "\n" or 0x2800 <= ord(ch) <= 0x283F or ch in "-/ card0123456789"
               for ch in preview)
    assert len(braille_lines) == 2 * CARD_LAYOUT.lines_per_page


def test_svg_draws_every_raised_dot(layout: BrailleCardLayout) -> None:
    card = SecurityCard(SERIAL, ("0000", "1111"))
    doc = layout.card(card)
    svg = doc.svg("card")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    raised = [c for c in root.iterfind(".//s:circle", ns) if c.get("class") == "dot"]
    expected = sum((ord(c) - 0x2800).bit_count() for p in doc.pages for ln in p for c in ln)
    assert len(raised) == expected > 0
    assert len(root.findall(".//s:g", ns)) == doc.page_count


def test_configured_shape_lays_out(layout: BrailleCardLayout) -> None:
    card = SecurityCard.generate(SERIAL, CardSpec(code_count=60, code_digits=6))
    doc = layout.card(card)
    check_brf_dimensions(doc.to_brf(), CARD_LAYOUT)
    assert page_entries(doc) == 60


def test_too_narrow_layout_is_refused(layout: BrailleCardLayout) -> None:
    card = SecurityCard.generate(SERIAL, CardSpec(code_digits=8))
    with pytest.raises(BadRequest):
        layout.card(card, LayoutSpec("tiny", 12, 10))
    with pytest.raises(BadRequest):
        LayoutSpec("bad", 4, 10)
    with pytest.raises(BadRequest):
        layout.document(card, "poster")


def test_wrap_and_paginate() -> None:
    assert wrap("⠁⠁⠀⠃⠃⠃⠀⠉", 6) == ["⠁⠁⠀⠃⠃⠃", "⠉"]
    assert wrap("⠁" * 13, 6) == ["⠁" * 6, "⠁" * 6, "⠁"]
    doc = paginate(LayoutSpec("t", 12, 4), "⠁⠃", ["⠉"] * 7, lambda p, n: "⠼" + "⠚⠁⠃⠉⠙⠑⠋⠛⠓⠊"[p % 10])
    assert doc.page_count == 3
    assert [len(p) for p in doc.pages] == [4, 4, 2]
    assert doc.pages[2][0] == "⠁⠃" + BLANK * 8 + "⠼⠉"


def test_document_refuses_oversized_content() -> None:
    with pytest.raises(BadRequest):
        BrailleDocument(LayoutSpec("t", 12, 4), (("⠁" * 13,),))
    with pytest.raises(BadRequest):
        BrailleDocument(LayoutSpec("t", 12, 4), (("⠁",) * 5,))
    with pytest.raises(BadRequest):
        BrailleDocument(LayoutSpec("t", 12, 4), (("\u28ff",),))


def page_entries(doc: BrailleDocument) -> int:
    return sum(line.count("⠐⠂⠀⠼") for page in doc.pages for line in page)
