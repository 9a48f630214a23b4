"""A terminal's device information (EFT art. 2(1)16; CA art. 14(1)4) and what it identifies.

Device information is what the internet-banking backend collected from the customer's PC or
phone: IP address, MAC address, HDD serial, USB serial, OS and browser version, phone
identifiers. It is checked and normalised here (MAC in lower case with colons, IP in its
canonical form) so that a designation, an incident report and a transfer compare equal.

A **designated terminal** matches when every identifier it was designated with, among the
configured fields (by default MAC, HDD serial, USB serial and phone identifier: the IP address
and versions change), equals the one presented. The **incident list** holds single
identifiers (CA art. 2(1)6: device information where an electronic-finance incident or a
certificate leak happened); a terminal presenting any listed identifier is refused.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import BadRequest


@unique
class Field(StrEnum):
    IP = "ip"
    MAC = "mac"
    HDD_SERIAL = "hdd_serial"
    USB_SERIAL = "usb_serial"
    OS_VERSION = "os_version"
    BROWSER_VERSION = "browser_version"
    PHONE_ID = "phone_id"


# Fields that identify one terminal (the others describe it).
IDENTIFYING = (Field.MAC, Field.HDD_SERIAL, Field.USB_SERIAL, Field.PHONE_ID)
# Fields an incident may name: a version string is shared by millions of terminals.
LISTABLE = (Field.IP, Field.MAC, Field.HDD_SERIAL, Field.USB_SERIAL, Field.PHONE_ID)

_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}")
_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/ -]{0,63}")
_PHONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{3,63}")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._()/;:+-]{0,63}")
RULES = {
    Field.MAC: "six hex byte pairs (00:1a:2b:3c:4d:5e, dashes or none also accepted)",
    Field.HDD_SERIAL: "1..64 letters, digits, spaces or . _ : / -",
    Field.USB_SERIAL: "1..64 letters, digits, spaces or . _ : / -",
    Field.PHONE_ID: "4..64 letters, digits or dashes",
    Field.OS_VERSION: "1..64 letters, digits, spaces or . _ ( ) / ; : + -",
    Field.BROWSER_VERSION: "1..64 letters, digits, spaces or . _ ( ) / ; : + -",
}


@dataclass(frozen=True)
class DeviceInfo:
    ip: str = ""
    mac: str = ""
    hdd_serial: str = ""
    usb_serial: str = ""
    os_version: str = ""
    browser_version: str = ""
    phone_id: str = ""

    def get(self, field: Field) -> str:
        return str(getattr(self, field.value))

    def present(self, fields: Iterable[Field] = tuple(Field)) -> dict[Field, str]:
        return {f: v for f in fields if (v := self.get(f))}

    def as_dict(self) -> dict[str, str]:
        """The non-empty fields (for the audit trail and the customer's export)."""
        return {f.value: v for f, v in self.present().items()}

    @property
    def identifies(self) -> bool:
        return bool(self.present(IDENTIFYING))


def normalise_value(field: Field, value: str, where: str = "") -> str:
    """One field's value in its canonical form; BadRequest naming the field when malformed."""
    name = f"{where}{field.value}"
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text", field=name)
    value = value.strip()
    if field is Field.IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise BadRequest(f"{name} must be an IPv4 or IPv6 address", field=name) from None
    if field is Field.MAC:
        if _MAC.fullmatch(value) is None:
            raise BadRequest(f"{name} must be {RULES[field]}", field=name)
        digits = re.sub("[:-]", "", value).lower()
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    pattern = {Field.HDD_SERIAL: _SERIAL, Field.USB_SERIAL: _SERIAL, Field.PHONE_ID: _PHONE,
               Field.OS_VERSION: _VERSION, Field.BROWSER_VERSION: _VERSION}[field]
    if pattern.fullmatch(value) is None:
        raise BadRequest(f"{name} must be {RULES[field]}", field=name)
    return value.upper() if field in (Field.HDD_SERIAL, Field.USB_SERIAL) else value


def normalise(info: DeviceInfo, where: str = "device.") -> DeviceInfo:
    """Every non-empty field checked and put in canonical form."""
    return dataclasses.replace(info, **{f.value: normalise_value(f, v, where)
                                        for f, v in info.present().items()})


def require_device(info: DeviceInfo, *, identifying: bool, where: str = "device") -> DeviceInfo:
    """``info`` normalised; it must name at least an IP address, or (``identifying``) an
    identifier of the terminal itself (MAC, HDD serial, USB serial or phone identifier)."""
    info = normalise(info, f"{where}.")
    if identifying and not info.identifies:
        raise BadRequest(f"{where} must name the terminal: a MAC address, HDD serial, USB "
                         "serial or phone identifier", field=where)
    if not info.present():
        raise BadRequest(f"{where} (the terminal's device information) is required",
                         field=where)
    return info


def designated_by(registered: DeviceInfo, presented: DeviceInfo,
                  fields: Iterable[Field] = IDENTIFYING) -> bool:
    """Whether ``presented`` is the terminal designated with ``registered``: every one of
    ``fields`` it was designated with matches, and there is at least one."""
    wanted = registered.present(fields)
    return bool(wanted) and all(presented.get(f) == v for f, v in wanted.items())


def incident_keys(info: DeviceInfo) -> list[tuple[Field, str]]:
    """The identifiers of ``info`` the incident list is searched for."""
    return list(info.present(LISTABLE).items())
