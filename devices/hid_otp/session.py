"""Commands of an OTP HID device over the frame protocol (status, serial, slots, HMAC)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from devices.hid_otp.config import (
    DELETE_CONFIG,
    SlotConfig,
    check_access_code,
)
from devices.hid_otp.constants import (
    CONFIG_SIZE,
    HMAC_CHALLENGE_SIZE,
    HMAC_RESPONSE_SIZE,
    SERIAL_SIZE,
    Command,
    ConfigStateFlag,
    Slot,
)
from devices.hid_otp.errors import (
    AccessCodeError,
    CommandRejectedError,
    InvalidConfigError,
    MalformedReportError,
    SlotNotConfiguredError,
)
from devices.hid_otp.keyboard import KeystrokeDecoder
from devices.hid_otp.protocol import OtpConnection, OtpProtocol, Timeouts

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Status:
    version: Version
    pgm_seq: int
    touch_level: int

    @classmethod
    def from_bytes(cls, data: bytes) -> Status:
        major, minor, build, pgm_seq, touch = struct.unpack("<BBBBH", data[:6])
        return cls((major, minor, build), pgm_seq, touch)

    def is_configured(self, slot: Slot) -> bool:
        flag = ConfigStateFlag.SLOT1_VALID if slot == Slot.ONE else ConfigStateFlag.SLOT2_VALID
        return bool(self.touch_level & flag)

    def is_touch_triggered(self, slot: Slot) -> bool:
        flag = ConfigStateFlag.SLOT1_TOUCH if slot == Slot.ONE else ConfigStateFlag.SLOT2_TOUCH
        return bool(self.touch_level & flag)


def pad_challenge(challenge: bytes) -> bytes:
    """Pad a challenge shorter than 64 bytes with a byte different from its last byte.

    A slot configured for variable-length challenges strips the trailing run of the last
    byte's value, which recovers the original challenge.
    """
    if len(challenge) >= HMAC_CHALLENGE_SIZE:
        raise InvalidConfigError(f"a challenge is shorter than {HMAC_CHALLENGE_SIZE} bytes")
    filler = b"\1" if challenge.endswith(b"\0") else b"\0"
    return challenge.ljust(HMAC_CHALLENGE_SIZE, filler)


class HidOtpSession:
    """One OTP HID device, reached over a connection offering 8-byte feature reports."""

    def __init__(self, connection: OtpConnection, timeouts: Timeouts | None = None) -> None:
        self.protocol = OtpProtocol(connection, timeouts)
        self._status = Status.from_bytes(self.protocol.read_status())

    @property
    def version(self) -> Version:
        return self._status.version

    def status(self) -> Status:
        self._status = Status.from_bytes(self.protocol.read_status())
        return self._status

    def serial(self) -> int:
        data = self.protocol.send_and_receive(Command.DEVICE_SERIAL, b"", SERIAL_SIZE)
        return int.from_bytes(data, "big")

    def _write(
        self, command: Command, payload: bytes, slots: tuple[Slot, ...], access_code: bytes | None
    ) -> Status:
        before = self.status()
        try:
            reply = self.protocol.transceive(command, payload + check_access_code(access_code))
        except CommandRejectedError:
            protected = [s for s in slots if before.is_configured(s)]
            if protected:
                raise AccessCodeError(protected[0] if len(slots) == 1 else None) from None
            raise
        if reply.status is None:
            raise MalformedReportError("the device answered a configuration write with data")
        self._status = Status.from_bytes(reply.status)
        return self._status

    def put_configuration(
        self, slot: Slot, config: SlotConfig, *, access_code: bytes | None = None
    ) -> Status:
        """Program ``slot``; ``access_code`` is the slot's current code, if it has one."""
        slot = Slot(slot)
        return self._write(Command.config(slot), bytes(config), (slot,), access_code)

    def update_configuration(
        self, slot: Slot, config: SlotConfig, *, access_code: bytes | None = None
    ) -> Status:
        """Change the flags and access code of a configured slot (its secret stays)."""
        slot = Slot(slot)
        if not self.status().is_configured(slot):
            raise SlotNotConfiguredError(slot)
        return self._write(Command.update(slot), bytes(config), (slot,), access_code)

    def delete_slot(self, slot: Slot, *, access_code: bytes | None = None) -> Status:
        """Erase the slot's configuration (nothing to do for an empty slot)."""
        slot = Slot(slot)
        status = self.status()
        if not status.is_configured(slot):
            return status
        return self._write(Command.config(slot), DELETE_CONFIG, (slot,), access_code)

    def swap_slots(self, *, access_code: bytes | None = None) -> Status:
        """Exchange the two slots. The access code sits where a config write carries it."""
        return self._write(Command.SWAP, bytes(CONFIG_SIZE), (Slot.ONE, Slot.TWO), access_code)

    def calculate_hmac_sha1(self, slot: Slot, challenge: bytes) -> bytes:
        """HMAC-SHA1 of ``challenge`` (under 64 bytes) with the slot's key."""
        slot = Slot(slot)
        padded = pad_challenge(challenge)
        try:
            return self.protocol.send_and_receive(
                Command.chal_hmac(slot), padded, HMAC_RESPONSE_SIZE
            )
        except CommandRejectedError:
            if not self.status().is_configured(slot):
                raise SlotNotConfiguredError(slot) from None
            raise CommandRejectedError(
                Command.chal_hmac(slot), f"slot {slot} is not set up for challenge-response"
            ) from None


class KeyboardConnection(Protocol):
    def read_input(self, timeout_ms: int) -> bytes: ...


def read_typed_text(
    connection: KeyboardConnection, *, first_timeout_ms: int = 5000, idle_timeout_ms: int = 200
) -> str:
    """Collect what the device types, up to Enter or until it stays quiet."""
    decoder = KeystrokeDecoder()
    text = ""
    timeout = first_timeout_ms
    while True:
        report = connection.read_input(timeout)
        if not report:
            return text
        text += decoder.feed(report)
        if text.endswith("\n"):
            return text[:-1]
        timeout = idle_timeout_ms
