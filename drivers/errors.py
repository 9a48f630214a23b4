"""Driver error classes (placeholder until the foundation lands; the lead's version wins)."""

from __future__ import annotations


class DriverError(Exception):
    pass


class DeviceAbsent(DriverError):
    pass


class DeviceTimeout(DriverError):
    pass


class DeviceIOError(DriverError):
    pass
