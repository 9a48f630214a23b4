"""Errors raised by drivers; the daemon maps them to gRPC status codes."""

from __future__ import annotations


class DriverError(Exception):
    """A device or its library failed. The message never contains a secret."""


class DeviceAbsent(DriverError):
    """The device (token, card, reader, HID device) is not attached."""


class DeviceTimeout(DriverError):
    """The device did not answer in time."""


class DeviceIOError(DriverError):
    """Talking to the device failed."""
