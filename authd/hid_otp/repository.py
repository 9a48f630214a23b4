"""Rows of the HID area: provisioned devices and the sealed access-code key."""

from __future__ import annotations

from dataclasses import dataclass

from authd.storage import Tx

ACCESS_CODE_KEY = "access-code-key"


@dataclass(frozen=True)
class ProvisionedDevice:
    device_serial: int
    otp_serial: str
    institution: str
    firmware: str
    digits: int
    ident_key: bytes | None  # sealed
    provisioned_at: float
    provisioned_by: str


_COLUMNS = (
    "device_serial, otp_serial, institution, firmware, digits, ident_key, provisioned_at,"
    " provisioned_by"
)


def get(tx: Tx, device_serial: int) -> ProvisionedDevice | None:
    row = tx.one(f"SELECT {_COLUMNS} FROM hid_devices WHERE device_serial = ?", (device_serial,))
    if row is None:
        return None
    return ProvisionedDevice(
        int(row[0]), row[1], row[2], row[3], int(row[4]),
        bytes(row[5]) if row[5] is not None else None, float(row[6]), row[7],
    )


def insert(tx: Tx, device: ProvisionedDevice) -> None:
    tx.execute(
        f"INSERT INTO hid_devices ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            device.device_serial, device.otp_serial, device.institution, device.firmware,
            device.digits, device.ident_key, device.provisioned_at, device.provisioned_by,
        ),
    )


def get_key(tx: Tx, name: str) -> bytes | None:
    row = tx.one("SELECT value FROM hid_keys WHERE name = ?", (name,))
    return bytes(row[0]) if row is not None else None


def put_key_once(tx: Tx, name: str, sealed: bytes) -> None:
    """Store the key unless another node stored one first (theirs then wins)."""
    tx.execute(
        "INSERT INTO hid_keys (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, sealed),
    )
