"""Device information on the incident list (사고정보; CA art. 2(6), 6(4)4, 14(1)4).

Institutions report the device information of terminals used in an electronic-finance
incident or a certificate leak (IP and MAC address, HDD serial, USB serial, OS and browser
version, phone identifiers); issuance from such a device is refused. Values are normalised
so that the same device matches however it was typed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import BadRequest


@unique
class DeviceInfoKind(StrEnum):
    IP = "ip"
    MAC = "mac"
    HDD_SERIAL = "hdd_serial"
    USB_SERIAL = "usb_serial"
    OS_VERSION = "os_version"
    BROWSER_VERSION = "browser_version"
    PHONE_ID = "phone_id"


_MAC = re.compile(r"[0-9a-f]{12}")
_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?")


def normalize(kind: DeviceInfoKind, value: str) -> str:
    """The canonical form of one item; BadRequest when it is not of its kind's form."""
    value = value.strip()
    if kind is DeviceInfoKind.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise BadRequest("device ip is not an IP address", field="device_info") from None
    if kind is DeviceInfoKind.MAC:
        digits = re.sub(r"[:\-.]", "", value.lower())
        if _MAC.fullmatch(digits) is None:
            raise BadRequest("device mac is not a MAC address", field="device_info")
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    if _TEXT.fullmatch(value) is None:
        raise BadRequest(f"device {kind.value} must be 1..128 printable ASCII characters",
                         field="device_info")
    return value.upper() if kind in (DeviceInfoKind.HDD_SERIAL, DeviceInfoKind.USB_SERIAL) \
        else value


@dataclass(frozen=True)
class DeviceInfo:
    """The applicant's terminal as the internet-banking front end reports it."""

    items: tuple[tuple[DeviceInfoKind, str], ...] = ()

    @classmethod
    def of(cls, raw: Mapping[str, str]) -> DeviceInfo:
        items = []
        for name, value in sorted(raw.items()):
            if not value:
                continue
            try:
                kind = DeviceInfoKind(name)
            except ValueError:
                known = ", ".join(k.value for k in DeviceInfoKind)
                raise BadRequest(f"unknown device information {name!r} (known: {known})",
                                 field="device_info") from None
            items.append((kind, normalize(kind, value)))
        return cls(tuple(items))
