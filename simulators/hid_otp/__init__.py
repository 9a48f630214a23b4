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


def simulated_bus(serials: tuple[int, ...] = ()) -> SimulatorBus:
    """The ``hid_otp.bus`` backend ``simulator``: a bus with blank devices of these serials."""
    bus = SimulatorBus()
    for serial in serials:
        bus.plug(SimulatedOtpDevice(serial=serial))
    return bus


__all__ = [
    "DeviceUnplugged",
    "Fault",
    "SimulatedHidHandle",
    "SimulatedOtpDevice",
    "SimulatorBus",
    "SlotState",
    "simulated_bus",
]
