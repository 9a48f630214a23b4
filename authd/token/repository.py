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
