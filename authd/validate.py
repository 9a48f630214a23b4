"""Checks for what callers send, applied at the edge (servicers, the caller's certificate).

A value that passes fits every store as it is, so SQLite and PostgreSQL give the same answer
(PostgreSQL refuses NUL in text and integers beyond 64 bits where SQLite stores anything), and
a bad request is refused with INVALID_ARGUMENT before it can reach a shared transaction.

Every check returns the value it accepted and raises ``BadRequest`` (``field`` set) with a
message that names the field and the rule; messages never repeat the value (it may be a secret
or garbage).
Patterns must match the whole value (``re.fullmatch``): ``$`` would let a trailing newline pass.
"""

from __future__ import annotations

import math
import re
import unicodedata

from devices.errors import BadRequest

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_TEXT = 256
# Letters, digits and dashes, not starting with a dash: 4..32 characters.
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{3,31}")
SERIAL_RULE = "4..32 letters, digits or dashes, not starting with a dash"
# An institution's own reference of its customer (its customer number, never a name or a
# resident registration number): every registration of a medium names one.
CUSTOMER = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CUSTOMER_RULE = "the institution's customer reference: 1..64 letters, digits or . _ : -"

# Characters no text field may hold: control characters (NUL, newlines, tabs, DEL, C1), lone
# surrogates, and the Unicode line and paragraph separators (they break log lines too).
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _forbidden(value: str) -> bool:
    if value.isprintable():  # fast path: no control or separator character at all
        return False
    return any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value)


def text(value: str, name: str, *, required: bool = False, max_length: int = MAX_TEXT) -> str:
    """Free text (an operator id, a reason): at most ``max_length`` characters, no control
    characters; ``required``: not empty or blank."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text", field=name)
    if required and not value.strip():
        raise BadRequest(f"{name} is required", field=name)
    if len(value) > max_length:
        raise BadRequest(f"{name} is longer than {max_length} characters", field=name)
    if _forbidden(value):
        raise BadRequest(f"{name} must not contain control characters (NUL, newlines, "
                         "tabs, ...)", field=name)
    return value


def identifier(value: str, name: str, pattern: re.Pattern[str], rule: str) -> str:
    """A value that must match ``pattern`` as a whole; ``rule`` says what it must be."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise BadRequest(f"{name} must be {rule}", field=name)
    return value


def serial(value: str, name: str = "serial") -> str:
    """A device serial: 4..32 letters, digits or dashes, not starting with a dash."""
    return identifier(value, name, SERIAL, SERIAL_RULE)


def customer_ref(value: str, name: str = "customer_id") -> str:
    """The institution's own reference of its customer: 1..64 letters, digits or ``. _ : -``.
    It is the same notion for every medium (OTP registrations, security cards, token and
    smartcard registrations) and is shown only to the institution that gave it."""
    if not value:
        raise BadRequest(f"{name} (the institution's customer reference) is required",
                         field=name)
    return identifier(value, name, CUSTOMER, CUSTOMER_RULE)


def finite(value: float, name: str, *, minimum: float | None = None,
           maximum: float | None = None) -> float:
    """A number that is not NaN or infinite, within ``minimum``..``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a finite number", field=name)
    if minimum is not None and value < minimum:
        raise BadRequest(f"{name} must be at least {_number(minimum)}", field=name)
    if maximum is not None and value > maximum:
        raise BadRequest(f"{name} must be at most {_number(maximum)}", field=name)
    return float(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def bounded_int(value: int, name: str, *, minimum: int = 0, maximum: int = INT64_MAX) -> int:
    """An integer within ``minimum``..``maximum`` (by default what a store's 64-bit signed
    column holds, and not negative)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name} must be an integer", field=name)
    if not minimum <= value <= maximum:
        raise BadRequest(f"{name} must be {minimum}..{maximum}", field=name)
    return value


OTP_CODE_DIGITS = (6, 8)  # the shortest and longest code an OTP device shows


def otp_code(value: str, name: str = "code") -> str:
    """A code as a customer types it: 6 to 8 ASCII digits (the device decides which length)."""
    low, high = OTP_CODE_DIGITS
    if not value:
        raise BadRequest(f"{name} is required", field=name)
    if not (low <= len(value) <= high and value.isascii() and value.isdigit()):
        raise BadRequest(f"{name} must be {low} to {high} digits", field=name)
    return value


# What a PIN pad (and a terminal's PIN entry) can send: printable ASCII, space to tilde. A
# control character, a non-ASCII letter or an emoji can only come from a broken or hostile
# client, so it is refused before the PIN reaches a token or card: it is never tried there and
# never counted as a wrong PIN.
PIN_RULE = "printable ASCII characters (letters, digits, punctuation)"
TOKEN_PIN_LENGTH = (1, 64)  # PKCS#11 leaves the length to the token; 64 covers every one
PIV_PIN_LENGTH = (6, 8)  # SP 800-73-4: the PIN and the PUK are 6 to 8 characters


def pin(value: str, name: str = "pin", *,
        length: tuple[int, int] = TOKEN_PIN_LENGTH) -> str:
    """A PIN, SO PIN or PUK as a customer or officer types it: ``length`` characters of
    printable ASCII. The message names the rule, never the value."""
    low, high = length
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} is required", field=name)
    if not low <= len(value) <= high:
        raise BadRequest(f"{name} must be {low} to {high} characters", field=name)
    if not all(" " <= ch <= "~" for ch in value):
        raise BadRequest(f"{name} must be {PIN_RULE}: a PIN pad sends nothing else",
                         field=name)
    return value
