"""The connection seam: 8-byte feature reports to and from one open HID device."""

from __future__ import annotations

from drivers.errors import DeviceAbsent, DeviceIOError, DriverError
from drivers.hid.backend import HidBackend, HidDevice

FEATURE_REPORT_SIZE = 8
REPORT_ID = 0  # OTP devices use unnumbered reports; hidapi wants the id in front
KEYBOARD_REPORT_SIZE = 8


class OtpHidConnection:
    """``send(report)`` / ``receive() -> report`` over an object with hidapi's device calls.

    When an operation fails and the device is no longer enumerated, the error is
    ``DeviceAbsent`` (the device was removed); other failures are ``DeviceIOError``.
    """

    def __init__(
        self, device: HidDevice, *, path: bytes = b"", backend: HidBackend | None = None
    ) -> None:
        self._device: HidDevice | None = device
        self.path = path
        self._backend = backend

    @classmethod
    def open(cls, backend: HidBackend, path: bytes) -> OtpHidConnection:
        try:
            device = backend.open_path(path)
        except (OSError, ValueError) as exc:
            raise DeviceAbsent("HID device not found (unplugged?)") from exc
        return cls(device, path=path, backend=backend)

    def _open_device(self) -> HidDevice:
        if self._device is None:
            raise DeviceIOError("HID connection is closed")
        return self._device

    def _failure(self, exc: Exception, what: str) -> DriverError:
        if self._backend is not None and self.path:
            try:
                present = any(e.get("path") == self.path for e in self._backend.enumerate(0, 0))
            except OSError:
                present = False
            if not present:
                return DeviceAbsent("HID device was removed")
        return DeviceIOError(f"HID {what} failed: {exc}")

    def send(self, report: bytes) -> None:
        if len(report) != FEATURE_REPORT_SIZE:
            raise ValueError(f"a feature report is {FEATURE_REPORT_SIZE} bytes")
        device = self._open_device()
        try:
            written = device.send_feature_report(bytes([REPORT_ID]) + bytes(report))
        except (OSError, ValueError) as exc:
            raise self._failure(exc, "feature report write") from exc
        if written < 0:
            raise self._failure(OSError("write error"), "feature report write")

    def receive(self) -> bytes:
        """The next 8-byte feature report (the report id byte removed)."""
        device = self._open_device()
        try:
            data = device.get_feature_report(REPORT_ID, FEATURE_REPORT_SIZE + 1)
        except (OSError, ValueError) as exc:
            raise self._failure(exc, "feature report read") from exc
        return bytes(data[1:])

    def read_input(self, timeout_ms: int) -> bytes:
        """The next keyboard input report, or b"" after ``timeout_ms``."""
        device = self._open_device()
        try:
            return bytes(device.read(KEYBOARD_REPORT_SIZE, max(1, timeout_ms)))
        except (OSError, ValueError) as exc:
            raise self._failure(exc, "input report read") from exc

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> OtpHidConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
