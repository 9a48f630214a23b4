"""Rows of the HID area: provisioned devices and the sealed access-code key."""

from __future__ import annotations

from dataclasses import dataclass, field

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


# --- reservations (the center's side of provisioning across the link) ----------------------

PENDING = "pending"
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
EXPIRED = "expired"
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class ReservationRow:
    id: str
    device_serial: int
    otp_serial: str
    institution: str
    terminal: str
    operator: str
    digits: int
    firmware: str
    sealed_seed: bytes | None = field(repr=False)
    sealed_ident_key: bytes | None = field(repr=False)
    identification: bool
    state: str
    created_at: float
    expires_at: float
    customer_id: str = ""


_RESERVATION_COLUMNS = (
    "id, device_serial, otp_serial, institution, terminal, operator, digits, firmware,"
    " sealed_seed, sealed_ident_key, identification, state, created_at, expires_at, customer_id"
)


def _reservation(row: tuple[object, ...]) -> ReservationRow:
    def blob(value: object) -> bytes | None:
        return bytes(value) if value is not None else None  # type: ignore[call-overload]

    return ReservationRow(
        str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]),  # type: ignore[call-overload]
        str(row[5]), int(row[6]), str(row[7]), blob(row[8]), blob(row[9]),  # type: ignore[call-overload]
        bool(row[10]), str(row[11]), float(row[12]), float(row[13]),  # type: ignore[arg-type]
        str(row[14]),
    )


def get_reservation(tx: Tx, reservation_id: str, *, lock: bool = False) -> ReservationRow | None:
    row = tx.one(f"SELECT {_RESERVATION_COLUMNS} FROM hid_reservations WHERE id = ?"
                 + (tx.for_update if lock else ""), (reservation_id,))
    return _reservation(row) if row is not None else None


def pending_for(tx: Tx, device_serial: int) -> ReservationRow | None:
    row = tx.one(f"SELECT {_RESERVATION_COLUMNS} FROM hid_reservations"
                 " WHERE device_serial = ? AND state = 'pending'" + tx.for_update,
                 (device_serial,))
    return _reservation(row) if row is not None else None


def insert_reservation(tx: Tx, r: ReservationRow) -> None:
    tx.execute(
        f"INSERT INTO hid_reservations ({_RESERVATION_COLUMNS}, settled_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        (r.id, r.device_serial, r.otp_serial, r.institution, r.terminal, r.operator, r.digits,
         r.firmware, r.sealed_seed, r.sealed_ident_key, 1 if r.identification else 0, r.state,
         r.created_at, r.expires_at, r.customer_id),
    )


def settle(tx: Tx, reservation_id: str, state: str, now: float) -> bool:
    """End a pending reservation in ``state`` and forget its secrets; False when it was no
    longer pending (settled by a racing call or node)."""
    return tx.execute(
        "UPDATE hid_reservations SET state = ?, settled_at = ?, sealed_seed = NULL,"
        " sealed_ident_key = NULL WHERE id = ? AND state = 'pending'",
        (state, now, reservation_id),
    ) == 1


def overdue(tx: Tx, now: float, limit: int = 100) -> list[ReservationRow]:
    rows = tx.all(f"SELECT {_RESERVATION_COLUMNS} FROM hid_reservations"
                  " WHERE state = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
                  (now, limit))
    return [_reservation(r) for r in rows]


def prune_settled(tx: Tx, before: float) -> int:
    return tx.execute("DELETE FROM hid_reservations WHERE state <> 'pending' AND settled_at < ?",
                      (before,))
