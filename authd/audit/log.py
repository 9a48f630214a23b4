"""Writing audit records, and reading them back for one object.

Records are written inside the same transaction as the change they describe, so a change
without its record (or a record of a change that rolled back) cannot exist. ``detail`` must
never hold a secret; its keys are checked against a list of forbidden ones. A record holds no
retention value: the chain seals its class, the configuration says how long a class is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from authd.audit.records import COLUMNS, AuditRecord, encode_detail
from authd.context import SYSTEM, Caller, _current
from authd.storage import Tx

_FORBIDDEN = {"pin", "puk", "seed", "secret", "code", "codes", "key", "password", "answer"}
_INSERT = ("INSERT INTO audit_log (at, institution, role, subject, action, target, outcome,"
           " detail, customer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


class AuditLog:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    def record(self, tx: Tx, *, action: str, target: str, outcome: str,
               detail: Mapping[str, Any] | None = None, caller: Caller | None = None,
               customer: str | None = None) -> None:
        """One record in ``tx``. ``customer``: the institution's reference of the customer the
        change concerns, where the caller knows it (searchable with the institution)."""
        who = caller or _current.get() or SYSTEM
        if detail:
            leaked = _FORBIDDEN.intersection(k.lower() for k in detail)
            if leaked:
                raise ValueError(f"audit detail may not carry secrets: {sorted(leaked)}")
        tx.execute(_INSERT, (self.clock(), who.institution, who.role.value, who.subject, action,
                             target, outcome, encode_detail(detail), customer or None))

    def for_target(self, tx: Tx, target: str, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` records of one object, newest first."""
        rows = tx.all(f"SELECT {COLUMNS} FROM audit_log WHERE target = ?"
                      " ORDER BY id DESC LIMIT ?", (target, limit))
        return [AuditRecord.from_row(r) for r in rows]
