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
