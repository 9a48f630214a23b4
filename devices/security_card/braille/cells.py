"""Six-dot braille cells: Unicode braille and Braille ASCII (BRF).

A cell is kept as one Unicode braille character (U+2800 + dot bits, dot 1 =
bit 0 ... dot 6 = bit 5).  BRF files carry the North American Braille ASCII
code: one printable ASCII character per six-dot cell.
"""

from __future__ import annotations

from devices.errors import BadRequest

UNICODE_BRAILLE_BASE = 0x2800
BLANK = chr(UNICODE_BRAILLE_BASE)
FULL_CELL = chr(UNICODE_BRAILLE_BASE | 0x3F)

# index = dot bits (dot 1 = 1, dot 2 = 2, dot 3 = 4, dot 4 = 8, dot 5 = 16, dot 6 = 32)
BRF_BY_DOTS = " A1B'K2L@CIF/MSP\"E3H9O6R^DJG>NTQ,*5<-U8V.%[$+X!&;:4\\0Z7(_?W]#Y)="
DOTS_BY_BRF = {ch: i for i, ch in enumerate(BRF_BY_DOTS)}

FORM_FEED = "\f"
LINE_END = "\r\n"


def dots_of(cell: str) -> int:
    """Dot bits of a Unicode braille cell; BadRequest for anything else."""
    code = ord(cell) - UNICODE_BRAILLE_BASE
    if not 0 <= code <= 0xFF:
        raise BadRequest(f"not a braille cell: {cell!r}")
    return code


def cell_of(dots: int) -> str:
    if not 0 <= dots <= 0xFF:
        raise BadRequest("dot bits out of range")
    return chr(UNICODE_BRAILLE_BASE | dots)


def dot_numbers(cell: str) -> tuple[int, ...]:
    """``'⠃'`` -> ``(1, 2)``."""
    bits = dots_of(cell)
    return tuple(i + 1 for i in range(8) if bits & (1 << i))


def is_six_dot(cells: str) -> bool:
    return all(0 <= ord(c) - UNICODE_BRAILLE_BASE <= 0x3F for c in cells)


def to_brf(cells: str) -> str:
    """Unicode braille -> Braille ASCII.  Cells with dots 7 or 8 have no BRF form."""
    out = []
    for cell in cells:
        bits = dots_of(cell)
        if bits > 0x3F:
            raise BadRequest("BRF carries six-dot cells only (dots 7 and 8 found)")
        out.append(BRF_BY_DOTS[bits])
    return "".join(out)


def from_brf(text: str) -> str:
    """Braille ASCII -> Unicode braille (lower-case letters read as upper case)."""
    out = []
    for ch in text:
        bits = DOTS_BY_BRF.get(ch.upper() if "a" <= ch <= "z" else ch)
        if bits is None:
            raise BadRequest(f"not a Braille ASCII character: {ch!r}")
        out.append(chr(UNICODE_BRAILLE_BASE | bits))
    return "".join(out)


def flip_dot(cell: str, dot: int) -> str:
    """The cell with ``dot`` (1-6) raised if it was flat and flat if it was raised."""
    if not 1 <= dot <= 8:
        raise BadRequest("dot number must be 1-8")
    return cell_of(dots_of(cell) ^ (1 << (dot - 1)))
