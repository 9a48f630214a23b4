"""USB HID access (hidapi) for OTP devices: enumeration, monitoring, feature-report I/O."""

from __future__ import annotations

from drivers.hid.backend import HidapiBackend, HidBackend, HidDevice, SimulatedHidBus
from drivers.hid.connection import OtpHidConnection
from drivers.hid.discovery import (
    OTP_DEVICES,
    DeviceFilter,
    HidDeviceInfo,
    list_devices,
)
from drivers.hid.monitor import DeviceChanges, HidMonitor

__all__ = [
    "OTP_DEVICES",
    "DeviceChanges",
    "DeviceFilter",
    "HidBackend",
    "HidDevice",
    "HidDeviceInfo",
    "HidMonitor",
    "HidapiBackend",
    "OtpHidConnection",
    "SimulatedHidBus",
    "list_devices",
]
