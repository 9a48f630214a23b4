"""Rows of branch registrations, the same for every medium a customer brings to a branch.

Each such medium keeps its registrations in its own table (``token_registrations``,
``smartcard_registrations``: the medium's ``repository.py`` names it); this class reads and
writes any of them. At most one registration per medium and institution is active (a partial
unique index); ended ones stay for the record.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence

from authd.customer.models import BranchRegistration, MediumKind
from authd.storage import Tx
from authd.storage.database import Row, Statement


class BranchRegistrationRows:
    def __init__(self, medium: MediumKind, table: str, serial_column: str) -> None:
        self.medium = medium
        self.table = table
        self._columns = (f"id, institution, {serial_column}, customer_id, terminal, operator,"
                         " registered_at, deregistered_at, active, public_key")
        self._serial = serial_column
        self.serial_column = serial_column

    def _row(self, r: Row) -> BranchRegistration:
        return BranchRegistration(
            id=str(r[0]), medium=self.medium, institution=str(r[1]), serial=str(r[2]),
            customer_id=str(r[3]), terminal=str(r[4]), operator=str(r[5]),
            registered_at=float(r[6]),
            deregistered_at=float(r[7]) if r[7] is not None else None, active=bool(r[8]),
            public_key=bytes(r[9]) if r[9] is not None else b"")

    def active(self, tx: Tx, institution: str, serial: str, *,
               lock: bool = False) -> BranchRegistration | None:
        row = tx.one(f"SELECT {self._columns} FROM {self.table}"
                     f" WHERE institution = ? AND {self._serial} = ? AND active = 1"
                     + (tx.for_update if lock else ""), (institution, serial))
        return self._row(row) if row is not None else None

    def insert(self, tx: Tx, *, institution: str, serial: str, customer_id: str,
               terminal: str, operator: str, now: float,
               public_key: bytes = b"") -> BranchRegistration:
        reg = BranchRegistration(uuid.uuid4().hex, self.medium, institution, serial,
                                 customer_id, terminal, operator, now, None, True, public_key)
        tx.execute(f"INSERT INTO {self.table} ({self._columns})"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1, ?)",
                   (reg.id, institution, serial, customer_id, terminal, operator, now,
                    public_key or None))
        return reg

    def end(self, tx: Tx, reg: BranchRegistration, now: float) -> BranchRegistration | None:
        """End an active registration; None when it was ended already (by a racing call)."""
        changed = tx.execute(f"UPDATE {self.table} SET active = 0, deregistered_at = ?"
                             " WHERE id = ? AND active = 1", (now, reg.id))
        if changed == 0:
            return None
        return dataclasses.replace(reg, deregistered_at=now, active=False)

    def find(self, tx: Tx, institution: str, *, serial: str = "", customer_id: str = "",
             include_ended: bool = False) -> list[BranchRegistration]:
        """The institution's registrations of ``serial`` and/or of ``customer_id`` (at least
        one of them), oldest first."""
        where, params = ["institution = ?"], [institution]
        if serial:
            where.append(f"{self._serial} = ?")
            params.append(serial)
        if customer_id:
            where.append("customer_id = ?")
            params.append(customer_id)
        if not include_ended:
            where.append("active = 1")
        rows = tx.all(f"SELECT {self._columns} FROM {self.table} WHERE "
                      + " AND ".join(where) + " ORDER BY registered_at, id", params)
        return [self._row(r) for r in rows]


# The media a customer still uses at an institution, every kind in one statement (a transfer
# decision reads them on each call): tokens and smartcards first (PostgreSQL types the NULL
# keys of the branches after them), then OTP devices, then security cards. Columns: kind,
# serial, state, channel or card medium, registered_at, updated_at, OTP issuer, failures,
# public key, terminal, registration id.
_LIVE_HELD = ("SELECT '{kind}', {serial}, 'active', 'branch', registered_at, registered_at,"
              " '', 0, public_key, terminal, id FROM {table}"
              " WHERE institution = ? AND customer_id = ? AND active = 1")
_LIVE_OTP = ("SELECT 'otp', d.serial, d.state, r.channel, r.registered_at, d.updated_at,"
             " d.issuer, d.failures, NULL, '', '' FROM otp_registrations r"
             " JOIN otp_devices d ON d.serial = r.serial"
             " WHERE r.institution = ? AND r.customer_id = ?"
             " AND d.state IN ('active', 'locked', 'lost')")
_LIVE_CARDS = ("SELECT 'security_card', serial, state, medium, issued_at, updated_at, '',"
               " failures, NULL, '', '' FROM security_cards"
               " WHERE institution = ? AND customer_id = ? AND state IN ('active', 'restricted')")


def live_media(institution: str, customer_id: str,
               held: Sequence[BranchRegistrationRows]) -> Statement:
    """The statement of every medium ``customer_id`` still uses at ``institution`` (not
    ended), to run in a transaction (``Tx.all`` or, with other reads, ``Tx.all_of``)."""
    parts = [_LIVE_HELD.format(kind=rows.medium.value, serial=rows.serial_column,
                               table=rows.table) for rows in held] + [_LIVE_OTP, _LIVE_CARDS]
    return " UNION ALL ".join(parts), (institution, customer_id) * len(parts)
