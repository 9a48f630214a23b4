"""Braille translation through liblouis (the only module that loads liblouis)."""

from __future__ import annotations

from drivers.braille.liblouis import (
    BRF_DISPLAY,
    KOREAN_GRADE1,
    KOREAN_GRADE2,
    UNICODE_DISPLAY,
    LiblouisError,
    LiblouisTranslator,
)

__all__ = [
    "BRF_DISPLAY",
    "KOREAN_GRADE1",
    "KOREAN_GRADE2",
    "UNICODE_DISPLAY",
    "LiblouisError",
    "LiblouisTranslator",
]
