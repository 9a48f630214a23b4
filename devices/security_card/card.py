"""The security card (보안카드): a serial and numbered codes of decimal digits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from devices.errors import BadRequest
from devices.security_card.random import DEFAULT_RANDOM, RandomBytes, random_digits

DEFAULT_CODE_COUNT = 35
DEFAULT_CODE_DIGITS = 4
MIN_CODE_COUNT = 2
MAX_CODE_COUNT = 99
MIN_CODE_DIGITS = 2
MAX_CODE_DIGITS = 8

SERIAL_RE = re.compile(r"^[0-9A-Z][0-9A-Z-]{2,30}[0-9A-Z]$")
SERIAL_GROUPS = 3
SERIAL_GROUP_DIGITS = 4


@dataclass(frozen=True)
class CardSpec:
    """How many codes a card has and how many digits each code has."""

    code_count: int = DEFAULT_CODE_COUNT
    code_digits: int = DEFAULT_CODE_DIGITS

    def __post_init__(self) -> None:
        if not MIN_CODE_COUNT <= self.code_count <= MAX_CODE_COUNT:
            raise BadRequest(
                f"code count must be between {MIN_CODE_COUNT} and {MAX_CODE_COUNT}"
            )
        if not MIN_CODE_DIGITS <= self.code_digits <= MAX_CODE_DIGITS:
            raise BadRequest(
                f"code digits must be between {MIN_CODE_DIGITS} and {MAX_CODE_DIGITS}"
            )


def validate_serial(serial: str) -> str:
    """Return ``serial`` if it is a well-formed card serial, else raise BadRequest."""
    if not isinstance(serial, str) or not SERIAL_RE.match(serial):
        raise BadRequest(
            "card serial must be 4-32 characters of digits, capital letters and '-'"
        )
    return serial


def new_serial(random_bytes: RandomBytes = DEFAULT_RANDOM) -> str:
    """A fresh printed serial, e.g. ``4821-0937-1234``."""
    digits = random_digits(random_bytes, SERIAL_GROUPS * SERIAL_GROUP_DIGITS)
    return "-".join(
        digits[i : i + SERIAL_GROUP_DIGITS] for i in range(0, len(digits), SERIAL_GROUP_DIGITS)
    )


@dataclass(frozen=True)
class SecurityCard:
    """A card's serial and its codes; ``codes[0]`` is code number 1.

    ``repr`` never shows the codes.
    """

    serial: str
    codes: tuple[str, ...] = field(repr=False)

    def __post_init__(self) -> None:
        validate_serial(self.serial)
        if not MIN_CODE_COUNT <= len(self.codes) <= MAX_CODE_COUNT:
            raise BadRequest("a card has between 2 and 99 codes")
        width = len(self.codes[0])
        if not MIN_CODE_DIGITS <= width <= MAX_CODE_DIGITS:
            raise BadRequest("card codes have between 2 and 8 digits")
        for code in self.codes:
            if len(code) != width or not _is_ascii_digits(code):
                raise BadRequest("card codes must be decimal digits of equal length")

    @classmethod
    def generate(
        cls,
        serial: str,
        spec: CardSpec | None = None,
        random_bytes: RandomBytes = DEFAULT_RANDOM,
    ) -> SecurityCard:
        spec = spec or CardSpec()
        digits = random_digits(random_bytes, spec.code_count * spec.code_digits)
        codes = tuple(
            digits[i : i + spec.code_digits] for i in range(0, len(digits), spec.code_digits)
        )
        return cls(serial=serial, codes=codes)

    @property
    def spec(self) -> CardSpec:
        return CardSpec(code_count=len(self.codes), code_digits=len(self.codes[0]))

    def code(self, number: int) -> str:
        """The code printed as ``number`` (1-based)."""
        if not 1 <= number <= len(self.codes):
            raise BadRequest(f"code number must be between 1 and {len(self.codes)}")
        return self.codes[number - 1]

    def numbered(self) -> list[tuple[int, str]]:
        return [(i + 1, code) for i, code in enumerate(self.codes)]

    def codes_bytes(self) -> bytes:
        """The codes as one ASCII digit string (what the center seals)."""
        return "".join(self.codes).encode("ascii")

    @classmethod
    def from_codes_bytes(cls, serial: str, data: bytes, spec: CardSpec) -> SecurityCard:
        text = data.decode("ascii")
        if len(text) != spec.code_count * spec.code_digits:
            raise BadRequest("sealed codes do not match the card's layout")
        codes = tuple(
            text[i : i + spec.code_digits] for i in range(0, len(text), spec.code_digits)
        )
        return cls(serial=serial, codes=codes)


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
