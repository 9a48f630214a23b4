"""Input validators shared by the servicers: a clear INVALID_ARGUMENT before any store work."""

from __future__ import annotations

from devices.errors import BadRequest

OTP_CODE_DIGITS = (6, 8)  # the shortest and longest code an OTP device shows


def otp_code(value: str, name: str = "code") -> str:
    """A code as a customer types it: 6 to 8 ASCII digits (the device decides which length)."""
    low, high = OTP_CODE_DIGITS
    if not value:
        raise BadRequest(f"{name} is required")
    if not (low <= len(value) <= high and value.isascii() and value.isdigit()):
        raise BadRequest(f"{name} must be {low} to {high} digits")
    return value
