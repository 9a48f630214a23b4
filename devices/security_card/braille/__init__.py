"""Braille layout: cells, BRF pages, previews, and the braille security card.

Pure code: translation comes from a translator object passed in.
"""

from __future__ import annotations

from devices.security_card.braille.card_layout import (
    BrailleCardLayout,
    BrailleText,
    BrailleTranslator,
)
from devices.security_card.braille.cells import BLANK, flip_dot, from_brf, to_brf
from devices.security_card.braille.layout import (
    CARD_LAYOUT,
    LAYOUTS,
    PAGE_LAYOUT,
    BrailleDocument,
    LayoutSpec,
    parse_brf,
    render_svg,
)

__all__ = [
    "BLANK",
    "CARD_LAYOUT",
    "LAYOUTS",
    "PAGE_LAYOUT",
    "BrailleCardLayout",
    "BrailleDocument",
    "BrailleText",
    "BrailleTranslator",
    "LayoutSpec",
    "flip_dot",
    "from_brf",
    "parse_brf",
    "render_svg",
    "to_brf",
]
