"""Simulated OTP HID devices (YubiKey OTP protocol) and the bus they plug into."""

from __future__ import annotations

from simulators.hid_otp.bus import SimulatorBus
from simulators.hid_otp.device import (
    DeviceUnplugged,
    Fault,
    SimulatedOtpDevice,
    SlotState,
)
from simulators.hid_otp.handle import SimulatedHidHandle

__all__ = [
    "DeviceUnplugged",
    "Fault",
    "SimulatedHidHandle",
    "SimulatedOtpDevice",
    "SimulatorBus",
    "SlotState",
]
