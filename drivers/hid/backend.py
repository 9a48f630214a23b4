"""Where HID devices come from: hidapi on a real host, or any object offering the same calls.

A backend has two calls shaped like hidapi's module functions: ``enumerate(vendor_id,
product_id)`` returning hidapi's dictionaries and ``open_path(path)`` returning an open
device object (``send_feature_report``, ``get_feature_report``, ``read``, ``write``,
``close``). The simulator's bus is such a backend.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from drivers.errors import DriverError


class HidDevice(Protocol):
    """The interface of an open hidapi ``hid.device``."""

    def send_feature_report(self, data: bytes, /) -> int: ...

    def get_feature_report(self, report_num: int, max_length: int, /) -> Sequence[int]: ...

    def read(self, max_length: int, timeout_ms: int = 0, /) -> Sequence[int]: ...

    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


class HidBackend(Protocol):
    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]: ...

    def open_path(self, path: bytes) -> HidDevice: ...


class SimulatedHidBus(HidBackend, Protocol):
    """A backend whose devices are software: the hands at the terminal plug, unplug and touch
    them by serial (the daemon's simulator service drives it; ``simulators/hid_otp`` is one)."""

    def plug_new(self, serial: int, firmware: tuple[int, int, int],
                 processing_delay: float) -> bytes:
        """Plug in a new blank device; returns its path. Raises KeyError if the serial is in."""
        ...

    def unplug_serial(self, serial: int) -> None:
        """Pull the device out. Raises KeyError when no such device is plugged in."""
        ...

    def path_of_serial(self, serial: int) -> bytes | None: ...

    def touch(self, serial: int, slot: int) -> None:
        """Press the device's button (short for slot 1, long for slot 2). KeyError if absent."""
        ...

    def processing(self, serial: int) -> bool:
        """Whether the device is processing a command written to it. KeyError if absent."""
        ...


class HidapiBackend:
    """The host's HID devices through hidapi (hidraw on Linux)."""

    # hidapi's enumeration and open are not documented as thread-safe: one at a time.
    _lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import hid  # the only import of hidapi in the project
        except ImportError as exc:
            raise DriverError(
                "the hidapi Python package is not installed (pip install 'authd[hid]')"
            ) from exc
        self._hid = hid

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._hid.enumerate(vendor_id, product_id))

    def open_path(self, path: bytes) -> HidDevice:
        with self._lock:
            device = self._hid.device()
            device.open_path(path)
        return device  # type: ignore[no-any-return]
