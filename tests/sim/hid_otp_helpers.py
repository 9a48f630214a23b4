"""Helpers for the HID OTP simulator tests: a bus with devices and recording handles."""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.hid_otp import HidOtpSession, Timeouts
from drivers.hid import OtpHidConnection, list_devices
from simulators.hid_otp import SimulatedHidHandle, SimulatedOtpDevice, SimulatorBus

FAST = Timeouts(write_ready=0.5, response=0.5, touch=2.0, poll_max=0.005)


@dataclass
class Attached:
    bus: SimulatorBus
    device: SimulatedOtpDevice
    path: bytes
    connection: OtpHidConnection
    session: HidOtpSession


def attach(
    bus: SimulatorBus | None = None,
    serial: int = 10_000_001,
    timeouts: Timeouts = FAST,
    **device_options: object,
) -> Attached:
    bus = bus or SimulatorBus()
    device = SimulatedOtpDevice(serial=serial, **device_options)  # type: ignore[arg-type]
    path = bus.plug(device)
    assert any(info.path == path for info in list_devices(bus))
    connection = OtpHidConnection.open(bus, path)
    return Attached(bus, device, path, connection, HidOtpSession(connection, timeouts))


@dataclass
class RecordingHandle:
    """Wraps a device object and records the feature reports that cross it."""

    inner: SimulatedHidHandle
    sent: list[bytes] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)

    def send_feature_report(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return self.inner.send_feature_report(data)

    def get_feature_report(self, report_num: int, max_length: int) -> list[int]:
        data = self.inner.get_feature_report(report_num, max_length)
        self.received.append(bytes(data))
        return data

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        return self.inner.read(max_length, timeout_ms)

    def write(self, data: bytes) -> int:
        return self.inner.write(data)

    def close(self) -> None:
        self.inner.close()
