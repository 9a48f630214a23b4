"""Rows of tokens: their registrations at branches (kept at the center) and the daemon's
PIN failure counter (kept by the branch node the token is attached to)."""

from __future__ import annotations

import time

from authd.customer.models import MediumKind
from authd.customer.repository import BranchRegistrationRows
from authd.storage import Tx

# Registrations at branches, recorded at the center (authd/customer/registrations.py).
REGISTRATIONS = BranchRegistrationRows(MediumKind.HSM_TOKEN, "token_registrations",
                                       "token_serial")


# ----------------------------------------------------------------------------- PIN failures


USER_PIN = "token_pin_failures"
SO_PIN = "token_so_pin_failures"  # UnblockPin's SO PIN (migration 0120)


def reserve_pin_attempt(tx: Tx, serial: str, limit: int, table: str = USER_PIN) -> int | None:
    """Count one more attempt before the PIN is tried, atomically.

    Returns the failures counted before this attempt, or None when the limit is reached
    (then the PIN must not be tried at all). Reserving first means concurrent logins can
    never evaluate more than ``limit`` wrong PINs.
    """
    now = time.time()
    tx.execute(
        f"INSERT INTO {table} (token_serial, failures, updated_at) VALUES (?, 0, ?)"
        " ON CONFLICT (token_serial) DO NOTHING",
        (serial, now),
    )
    changed = tx.execute(
        f"UPDATE {table} SET failures = failures + 1, updated_at = ?"
        " WHERE token_serial = ? AND failures < ?",
        (now, serial, limit),
    )
    if changed != 1:
        return None
    row = tx.one(f"SELECT failures FROM {table} WHERE token_serial = ?", (serial,))
    return int(row[0]) - 1 if row is not None else 0


def release_pin_attempt(tx: Tx, serial: str, table: str = USER_PIN) -> None:
    """The PIN was not evaluated after all (token gone): give the attempt back."""
    tx.execute(
        f"UPDATE {table} SET failures = failures - 1, updated_at = ?"
        " WHERE token_serial = ? AND failures > 0",
        (time.time(), serial),
    )


def reset_pin_failures(tx: Tx, serial: str, table: str = USER_PIN) -> None:
    tx.execute(
        f"UPDATE {table} SET failures = 0, updated_at = ? WHERE token_serial = ?",
        (time.time(), serial),
    )


def pin_failures(tx: Tx, serial: str, table: str = USER_PIN) -> int:
    row = tx.one(f"SELECT failures FROM {table} WHERE token_serial = ?", (serial,))
    return int(row[0]) if row is not None else 0


# ------------------------------------------------------------------- initializations


def initialization(tx: Tx, serial: str) -> tuple[str, bytes | None] | None:
    """The label and the marker value recorded for the token's current initialization."""
    row = tx.one("SELECT label, marker FROM token_initializations WHERE token_serial = ?",
                 (serial,))
    if row is None:
        return None
    return str(row[0]), bytes.fromhex(row[1]) if row[1] is not None else None


def record_initialization(tx: Tx, serial: str, label: str, marker: bytes | None) -> None:
    tx.execute(
        "INSERT INTO token_initializations (token_serial, label, marker, recorded_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (token_serial) DO NOTHING",
        (serial, label, marker.hex() if marker is not None else None, time.time()),
    )


def forget_initialization(tx: Tx, serial: str) -> None:
    """The token was initialized again: its old counts and record go."""
    tx.execute("DELETE FROM token_initializations WHERE token_serial = ?", (serial,))
    for table in (USER_PIN, SO_PIN):
        reset_pin_failures(tx, serial, table)
