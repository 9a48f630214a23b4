"""Smartcard errors: status words mapped to clear, data-carrying errors."""

from __future__ import annotations

from devices.errors import BadRequest, WrongState


class ApduError(WrongState):
    """The card answered a status word other than 9000."""

    def __init__(self, data: bytes, sw: int, message: str | None = None) -> None:
        super().__init__(
            message or f"the card refused the command (status {sw:04X}: {describe_sw(sw)})"
        )
        self.data = data
        self.sw = sw


class BadResponseError(WrongState):
    """The card's answer is not what the protocol says (malformed TLV, wrong tags)."""


class CommandTooLongError(BadRequest):
    """The command does not fit in an APDU."""


class SecurityStatusError(ApduError):
    """6982: PIN or management key authentication required first."""


class ObjectNotFoundError(ApduError):
    """6A82: data object, key or application not on the card."""


class InvalidPinError(ApduError):
    """63Cx: wrong PIN or PUK; `attempts_remaining` left before it blocks (0: now blocked)."""

    def __init__(self, data: bytes, sw: int, attempts_remaining: int, what: str = "PIN") -> None:
        super().__init__(data, sw, f"wrong {what}: {attempts_remaining} attempt(s) left")
        self.attempts_remaining = attempts_remaining
        self.what = what


class PinBlockedError(InvalidPinError):
    """6983: the PIN (or PUK) is blocked."""

    def __init__(self, data: bytes, sw: int, what: str = "PIN") -> None:
        ApduError.__init__(self, data, sw, f"the {what} is blocked")
        self.attempts_remaining = 0
        self.what = what


_SW_TEXT = {
    0x6281: "part of the returned data may be corrupted",
    0x6700: "wrong length",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed",
    0x6A80: "incorrect data",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A84: "not enough memory",
    0x6A86: "incorrect P1/P2",
    0x6A88: "referenced data not found",
    0x6B00: "wrong parameters P1/P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def describe_sw(sw: int) -> str:
    if sw in _SW_TEXT:
        return _SW_TEXT[sw]
    if sw & 0xFFF0 == 0x63C0:
        return f"verification failed, {sw & 0x0F} attempt(s) left"
    if sw >> 8 == 0x61:
        return "more data available"
    if sw >> 8 == 0x6C:
        return f"wrong Le, {sw & 0xFF or 256} expected"
    return "unknown status"


def error_for_sw(data: bytes, sw: int, what: str = "PIN") -> ApduError:
    """The most specific error for a failing status word (fallback: ApduError)."""
    if sw & 0xFFF0 == 0x63C0:
        return InvalidPinError(data, sw, sw & 0x0F, what)
    if sw == 0x6983:
        return PinBlockedError(data, sw, what)
    if sw == 0x6982:
        return SecurityStatusError(data, sw)
    if sw in (0x6A82, 0x6A88):
        return ObjectNotFoundError(data, sw)
    return ApduError(data, sw)
