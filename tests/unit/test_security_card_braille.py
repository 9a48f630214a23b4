"""liblouis translation against known cells, and the BRF table against liblouis."""

from __future__ import annotations

import threading

import pytest

from devices.errors import BadRequest
from devices.security_card.braille import BLANK, from_brf, to_brf
from devices.security_card.braille.cells import BRF_BY_DOTS, dot_numbers, flip_dot
from drivers.braille import LiblouisError, LiblouisTranslator


@pytest.fixture(scope="module")
def louis() -> LiblouisTranslator:
    return LiblouisTranslator()


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        # number sign ⠼ (3456) then a-j cells for the digits
        ("0123456789", "⠼⠚⠁⠃⠉⠙⠑⠋⠛⠓⠊"),
        ("07", "⠼⠚⠛"),
        # "번호 07: 4821": 번 ⠘⠾, 호 ⠚⠥, colon ⠐⠂, and each number with its number sign
        ("번호 07: 4821", "⠘⠾⠚⠥⠀⠼⠚⠛⠐⠂⠀⠼⠙⠓⠃⠁"),
        # 보안카드: ㅂ⠘ ㅗ⠥ 안⠣⠒ ㅋ⠋ 가-abbreviation for 카 ⠋ ... 드 ⠊⠪
        ("보안카드", "⠘⠥⠣⠒⠋⠊⠪"),
        # grade 2 abbreviation 것 and syllable contractions (ko-g2)
        ("일련번호", "⠕⠂⠐⠡⠘⠾⠚⠥"),
    ],
)
def test_korean_and_numbers_translate_to_known_cells(louis: LiblouisTranslator, text: str,
                                                     cells: str) -> None:
    assert louis.to_unicode(text) == cells


def test_brf_output_is_the_same_dots(louis: LiblouisTranslator) -> None:
    text = "번호 07: 4821"
    assert louis.to_brf(text) == '^)JU #JG"1 #DHBA'
    assert from_brf(louis.to_brf(text)) == louis.to_unicode(text)


def test_our_brf_table_matches_liblouis_display_table(louis: LiblouisTranslator) -> None:
    every_cell = "".join(chr(0x2800 + bits) for bits in range(64))
    assert louis.dots_to_brf(every_cell) == BRF_BY_DOTS
    assert to_brf(every_cell) == BRF_BY_DOTS
    assert from_brf(BRF_BY_DOTS) == every_cell
    assert len(set(BRF_BY_DOTS)) == 64


def test_brf_refuses_eight_dot_cells_and_foreign_bytes() -> None:
    with pytest.raises(BadRequest):
        to_brf("\u28ff")
    with pytest.raises(BadRequest):
        from_brf("~")
    assert from_brf("abc") == from_brf("ABC")


def test_flip_dot() -> None:
    assert dot_numbers("⠁") == (1,)
    assert flip_dot("⠁", 2) == "⠃"  # digit 1 -> digit 2
    assert flip_dot("⠃", 2) == "⠁"
    assert flip_dot(BLANK, 6) == "⠠"


def test_translator_handles_empty_and_long_input(louis: LiblouisTranslator) -> None:
    assert louis.to_unicode("") == ""
    with pytest.raises(LiblouisError):
        louis.to_unicode("가" * 5000)
    with pytest.raises(LiblouisError):
        louis.to_unicode("a\x00b")


def test_unknown_table_is_refused() -> None:
    with pytest.raises(LiblouisError):
        LiblouisTranslator("no-such-table.ctb")


def test_translation_is_safe_from_many_threads(louis: LiblouisTranslator) -> None:
    expected = {f"번호 {n:02d}: {n * 37 % 10000:04d}": "" for n in range(1, 36)}
    for text in expected:
        expected[text] = louis.to_unicode(text)
    errors: list[str] = []

    def work() -> None:
        for _ in range(20):
            for text, cells in expected.items():
                if louis.to_unicode(text) != cells:
                    errors.append(text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
