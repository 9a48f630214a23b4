"""Rows of branch registrations, the same for every medium a customer brings to a branch.

Each such medium keeps its registrations in its own table (``token_registrations``,
``smartcard_registrations``: the medium's ``repository.py`` names it); this class reads and
writes any of them. At most one registration per medium and institution is active (a partial
unique index); ended ones stay for the record.
"""

from __future__ import annotations

import uuid

from authd.customer.models import BranchRegistration, MediumKind
from authd.storage import Tx
from authd.storage.database import Row


class BranchRegistrationRows:
    def __init__(self, medium: MediumKind, table: str, serial_column: str) -> None:
        self.medium = medium
        self.table = table
        self._columns = (f"id, institution, {serial_column}, customer_id, terminal, operator,"
                         " registered_at, deregistered_at, active")
        self._serial = serial_column

    def _row(self, r: Row) -> BranchRegistration:
        return BranchRegistration(
            id=str(r[0]), medium=self.medium, institution=str(r[1]), serial=str(r[2]),
            customer_id=str(r[3]), terminal=str(r[4]), operator=str(r[5]),
            registered_at=float(r[6]),
            deregistered_at=float(r[7]) if r[7] is not None else None, active=bool(r[8]))

    def active(self, tx: Tx, institution: str, serial: str, *,
               lock: bool = False) -> BranchRegistration | None:
        row = tx.one(f"SELECT {self._columns} FROM {self.table}"
                     f" WHERE institution = ? AND {self._serial} = ? AND active = 1"
                     + (tx.for_update if lock else ""), (institution, serial))
        return self._row(row) if row is not None else None

    def insert(self, tx: Tx, *, institution: str, serial: str, customer_id: str,
               terminal: str, operator: str, now: float) -> BranchRegistration:
        reg = BranchRegistration(uuid.uuid4().hex, self.medium, institution, serial,
                                 customer_id, terminal, operator, now, None, True)
        tx.execute(f"INSERT INTO {self.table} ({self._columns})"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1)",
                   (reg.id, institution, serial, customer_id, terminal, operator, now))
        return reg

    def end(self, tx: Tx, reg: BranchRegistration, now: float) -> BranchRegistration | None:
        """End an active registration; None when it was ended already (by a racing call)."""
        changed = tx.execute(f"UPDATE {self.table} SET active = 0, deregistered_at = ?"
                             " WHERE id = ? AND active = 1", (now, reg.id))
        if changed == 0:
            return None
        return BranchRegistration(reg.id, reg.medium, reg.institution, reg.serial,
                                  reg.customer_id, reg.terminal, reg.operator,
                                  reg.registered_at, now, False)

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
