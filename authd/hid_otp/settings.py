"""The ``[hid_otp]`` section: where USB HID OTP devices come from and the device protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from authd.settings import setting


@dataclass(frozen=True)
class HidOtpSettings:
    SECTION: ClassVar[str] = "hid_otp"
    backend: str = setting(
        "", "where devices come from: 'hidapi' (this host's USB HID devices) or 'simulator' "
            "(a simulated bus); empty: 'simulator' when simulators are on, else 'hidapi'")
    serial_prefix: str = setting("HID-", "prefix of a device's serial at the OTP center "
                                         "(followed by its 10-digit USB serial)")
    response_timeout: float = setting(2.0, "seconds a device may take to answer a command")
    touch_timeout: float = setting(16.0, "seconds to wait for the customer's touch")
    monitor_interval: float = setting(1.0, "seconds between plug/unplug scans for the log "
                                           "(0: off)")
    simulated_devices: tuple[int, ...] = setting(
        (), "simulator backend: serials of blank devices plugged in at start")
    reservation_seconds: float = setting(
        120.0, "center: how long a provisioning's reserved enrollment waits for the branch's "
               "confirmation before it expires (nothing is then enrolled)")
    sweep_interval: float = setting(
        5.0, "center: seconds between sweeps that expire unconfirmed reservations")
    branch_copy_max_age: float = setting(
        86400.0, "branch-only node: seconds an answer of the center about a device attached "
                 "here is used while the center is unreachable (ListDevices, IdentifyDevice); "
                 "older answers are purged and the call answers UNAVAILABLE")

    def problems(self) -> list[str]:
        out = []
        if self.backend not in ("", "hidapi", "simulator"):
            out.append("backend must be 'hidapi' or 'simulator'")
        if not 0 < self.response_timeout <= 60 or not 0 < self.touch_timeout <= 120:
            out.append("response_timeout must be in (0, 60] and touch_timeout in (0, 120]")
        if not 2 <= self.reservation_seconds <= 3600:
            out.append("reservation_seconds must be 2..3600")
        if not 0 < self.sweep_interval <= 600:
            out.append("sweep_interval must be in (0, 600]")
        if not 1 <= self.branch_copy_max_age <= 30 * 86400:
            out.append("branch_copy_max_age must be 1..2592000 seconds (at most 30 days)")
        if self.monitor_interval < 0:
            out.append("monitor_interval must not be negative")
        if len(self.serial_prefix) > 16 or not self.serial_prefix.isascii():
            out.append("serial_prefix must be at most 16 ASCII characters")
        return out


SETTINGS = HidOtpSettings
