"""Branch registrations of tokens and the daemon's PIN failure counter, in the store."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from authd.storage import Tx
from authd.storage.database import Row


@dataclass(frozen=True)
class Registration:
    id: str
    institution: str
    token_serial: str
    customer_id: str
    terminal: str
    operator: str
    registered_at: float
    deregistered_at: float | None
    active: bool


_COLUMNS = (
    "id, institution, token_serial, customer_id, terminal, operator, registered_at,"
    " deregistered_at, active"
)


def _row(r: Row) -> Registration:
    return Registration(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        str(r[5]),
        float(r[6]),
        float(r[7]) if r[7] is not None else None,
        bool(r[8]),
    )


def active_registration(
    tx: Tx, institution: str, serial: str, lock: bool = False
) -> Registration | None:
    row = tx.one(
        f"SELECT {_COLUMNS} FROM token_registrations"
        " WHERE institution = ? AND token_serial = ? AND active = 1"
        + (tx.for_update if lock else ""),
        (institution, serial),
    )
    return _row(row) if row is not None else None


def insert_registration(
    tx: Tx, institution: str, serial: str, customer_id: str, terminal: str, operator: str
) -> Registration:
    reg = Registration(
        uuid.uuid4().hex,
        institution,
        serial,
        customer_id,
        terminal,
        operator,
        time.time(),
        None,
        True,
    )
    tx.execute(
        f"INSERT INTO token_registrations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            reg.id,
            reg.institution,
            reg.token_serial,
            reg.customer_id,
            reg.terminal,
            reg.operator,
            reg.registered_at,
            None,
            1,
        ),
    )
    return reg


def end_registration(tx: Tx, reg: Registration) -> Registration:
    now = time.time()
    changed = tx.execute(
        "UPDATE token_registrations SET active = 0, deregistered_at = ?"
        " WHERE id = ? AND active = 1",
        (now, reg.id),
    )
    if changed != 1:
        raise RuntimeError("registration changed concurrently")
    return Registration(
        reg.id,
        reg.institution,
        reg.token_serial,
        reg.customer_id,
        reg.terminal,
        reg.operator,
        reg.registered_at,
        now,
        False,
    )


# ----------------------------------------------------------------------------- PIN failures


def reserve_pin_attempt(tx: Tx, serial: str, limit: int) -> int | None:
    """Count one more attempt before the PIN is tried, atomically.

    Returns the failures counted before this attempt, or None when the limit is reached
    (then the PIN must not be tried at all). Reserving first means concurrent logins can
    never evaluate more than ``limit`` wrong PINs.
    """
    now = time.time()
    tx.execute(
        "INSERT INTO token_pin_failures (token_serial, failures, updated_at) VALUES (?, 0, ?)"
        " ON CONFLICT (token_serial) DO NOTHING",
        (serial, now),
    )
    changed = tx.execute(
        "UPDATE token_pin_failures SET failures = failures + 1, updated_at = ?"
        " WHERE token_serial = ? AND failures < ?",
        (now, serial, limit),
    )
    if changed != 1:
        return None
    row = tx.one("SELECT failures FROM token_pin_failures WHERE token_serial = ?", (serial,))
    return int(row[0]) - 1 if row is not None else 0


def release_pin_attempt(tx: Tx, serial: str) -> None:
    """The PIN was not evaluated after all (token gone): give the attempt back."""
    tx.execute(
        "UPDATE token_pin_failures SET failures = failures - 1, updated_at = ?"
        " WHERE token_serial = ? AND failures > 0",
        (time.time(), serial),
    )


def reset_pin_failures(tx: Tx, serial: str) -> None:
    tx.execute(
        "UPDATE token_pin_failures SET failures = 0, updated_at = ? WHERE token_serial = ?",
        (time.time(), serial),
    )


def pin_failures(tx: Tx, serial: str) -> int:
    row = tx.one("SELECT failures FROM token_pin_failures WHERE token_serial = ?", (serial,))
    return int(row[0]) if row is not None else 0
