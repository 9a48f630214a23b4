"""Finding OTP HID devices: filter enumeration by vendor/product id and usage page."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from drivers.errors import DeviceIOError
from drivers.hid.backend import HidBackend

YUBICO_VENDOR_ID = 0x1050
# Product ids whose devices expose the OTP (keyboard) interface.
YUBICO_OTP_PRODUCT_IDS = frozenset(
    {0x0010, 0x0110, 0x0111, 0x0114, 0x0116, 0x0401, 0x0403, 0x0405, 0x0407, 0x0410}
)
USAGE_PAGE_GENERIC_DESKTOP = 0x0001
USAGE_KEYBOARD = 0x0006


@dataclass(frozen=True)
class HidDeviceInfo:
    path: bytes
    vendor_id: int
    product_id: int
    usage_page: int
    usage: int
    interface_number: int
    serial_number: str = ""
    manufacturer: str = ""
    product: str = ""

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> HidDeviceInfo:
        path = entry["path"]
        return cls(
            path=path if isinstance(path, bytes) else str(path).encode(),
            vendor_id=int(entry.get("vendor_id", 0)),
            product_id=int(entry.get("product_id", 0)),
            usage_page=int(entry.get("usage_page", 0)),
            usage=int(entry.get("usage", 0)),
            interface_number=int(entry.get("interface_number", -1)),
            serial_number=entry.get("serial_number") or "",
            manufacturer=entry.get("manufacturer_string") or "",
            product=entry.get("product_string") or "",
        )


@dataclass(frozen=True)
class DeviceFilter:
    """Which HID interfaces are OTP devices: ids, then the keyboard usage.

    Backends that cannot read report descriptors report usage page 0; then the OTP
    interface is recognised by its interface number 0.
    """

    ids: frozenset[tuple[int, int]]
    usage_page: int = USAGE_PAGE_GENERIC_DESKTOP
    usage: int = USAGE_KEYBOARD

    @classmethod
    def for_products(cls, vendor_id: int, product_ids: Iterable[int]) -> DeviceFilter:
        return cls(frozenset((vendor_id, pid) for pid in product_ids))

    def matches(self, info: HidDeviceInfo) -> bool:
        if (info.vendor_id, info.product_id) not in self.ids:
            return False
        if info.usage_page == 0:
            return info.interface_number == 0
        return info.usage_page == self.usage_page and info.usage == self.usage

    @property
    def vendor_ids(self) -> frozenset[int]:
        return frozenset(vid for vid, _ in self.ids)


OTP_DEVICES = DeviceFilter.for_products(YUBICO_VENDOR_ID, YUBICO_OTP_PRODUCT_IDS)


def list_devices(
    backend: HidBackend, device_filter: DeviceFilter = OTP_DEVICES
) -> list[HidDeviceInfo]:
    """The attached OTP interfaces, sorted by path."""
    found: dict[bytes, HidDeviceInfo] = {}
    try:
        for vendor_id in sorted(device_filter.vendor_ids):
            for entry in backend.enumerate(vendor_id, 0):
                info = HidDeviceInfo.from_dict(entry)
                if device_filter.matches(info):
                    found[info.path] = info
    except OSError as exc:
        raise DeviceIOError(f"HID enumeration failed: {exc}") from exc
    return [found[path] for path in sorted(found)]
