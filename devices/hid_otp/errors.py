"""Errors of the HID OTP protocol, each mapped to a status by its base class."""

from __future__ import annotations

from devices.errors import BadRequest, DeviceFault, NotPermitted, TimedOut, WrongState


class CrcMismatchError(DeviceFault):
    """A response from the device failed its CRC check (corrupted transfer)."""

    def __init__(self, command: int) -> None:
        super().__init__(f"response to command 0x{command:02x} failed its CRC check")
        self.command = command


class MalformedReportError(DeviceFault):
    """A feature report of the wrong size or with an impossible sequence."""


class ProtocolTimeoutError(TimedOut):
    """The device did not become ready, answer or see a touch in time."""

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"device timed out {phase} (after {seconds:.2f} s)")
        self.phase = phase
        self.seconds = seconds


class CommandRejectedError(WrongState):
    """The device ignored the command (its programming sequence did not advance)."""

    def __init__(self, command: int, reason: str = "the device rejected the command") -> None:
        super().__init__(f"{reason} (command 0x{command:02x})")
        self.command = command


class SlotNotConfiguredError(WrongState):
    def __init__(self, slot: int) -> None:
        super().__init__(f"slot {slot} of the device is not configured")
        self.slot = slot


class SlotAlreadyConfiguredError(WrongState):
    def __init__(self, slot: int) -> None:
        super().__init__(f"slot {slot} of the device already holds a configuration")
        self.slot = slot


class AccessCodeError(NotPermitted):
    """The device refused to change a slot protected by an access code."""

    def __init__(self, slot: int | None) -> None:
        where = f"slot {slot}" if slot is not None else "the device"
        super().__init__(f"{where} refused the change: access code missing or wrong")
        self.slot = slot


class InvalidConfigError(BadRequest):
    """A seed, key, challenge or access code of the wrong size or form."""
