"""An open simulated device with the interface of a hidapi ``hid.device`` object."""

from __future__ import annotations

from collections.abc import Sequence

from simulators.hid_otp.device import DeviceUnplugged, SimulatedOtpDevice


class SimulatedHidHandle:
    """``send_feature_report``/``get_feature_report``/``read``/``write``/``close`` as hidapi.

    Feature reports carry the report id in their first byte (0: the device has no numbered
    reports), as hidapi does on every platform. Errors are ``OSError``; a closed handle
    raises ``ValueError`` like hidapi's "not open".
    """

    def __init__(self, device: SimulatedOtpDevice) -> None:
        self._device: SimulatedOtpDevice | None = device
        self._nonblocking = False

    def _open_device(self) -> SimulatedOtpDevice:
        if self._device is None:
            raise ValueError("not open")
        return self._device

    def send_feature_report(self, data: Sequence[int] | bytes) -> int:
        device = self._open_device()
        buf = bytes(data)
        if not buf or buf[0] != 0:
            raise OSError("invalid report id")
        device.write_feature(buf[1:])
        return len(buf)

    def get_feature_report(self, report_num: int, max_length: int) -> list[int]:
        device = self._open_device()
        if report_num != 0:
            raise OSError("invalid report id")
        report = bytes([report_num]) + device.read_feature()
        return list(report[:max_length])

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        device = self._open_device()
        if timeout_ms > 0:
            timeout: float | None = timeout_ms / 1000
        else:
            timeout = 0.0 if self._nonblocking else None
        return list(device.read_keyboard(timeout)[:max_length])

    def write(self, data: Sequence[int] | bytes) -> int:
        device = self._open_device()
        if not device.plugged:
            raise DeviceUnplugged("device disconnected")
        return len(bytes(data))  # output reports (keyboard LEDs) are accepted and ignored

    def set_nonblocking(self, value: int | bool) -> int:
        self._nonblocking = bool(value)
        return 0

    def close(self) -> None:
        self._device = None

    def get_manufacturer_string(self) -> str:
        return "authd simulator"

    def get_product_string(self) -> str:
        return "OTP HID device (simulated)"

    def get_serial_number_string(self) -> str:
        return ""
