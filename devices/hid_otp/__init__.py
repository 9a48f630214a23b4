"""OTP generators on USB HID speaking the YubiKey OTP protocol (frames over feature reports)."""

from __future__ import annotations

from devices.hid_otp.config import SlotConfig, hmac_sha1_config, hotp_config
from devices.hid_otp.constants import Command, Slot
from devices.hid_otp.protocol import OtpConnection, OtpProtocol, Timeouts
from devices.hid_otp.session import HidOtpSession, Status, read_typed_text

__all__ = [
    "Command",
    "HidOtpSession",
    "OtpConnection",
    "OtpProtocol",
    "Slot",
    "SlotConfig",
    "Status",
    "Timeouts",
    "hmac_sha1_config",
    "hotp_config",
    "read_typed_text",
]
