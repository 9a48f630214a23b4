"""The audit trail: who did what to which object, when, with which outcome.

Records are written inside the same transaction as the change they describe, so a change
without its record (or a record of a change that rolled back) cannot exist. ``detail`` must
never hold a secret; values are checked against a list of forbidden keys.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from authd.context import SYSTEM, Caller, _current
from authd.storage import Tx

YEAR = 365.25 * 24 * 3600
RETENTION_YEARS = 5.0  # DOMAIN.md §7, EFT art. 22
_FORBIDDEN = {"pin", "puk", "seed", "secret", "code", "codes", "key", "password", "answer"}


@dataclass(frozen=True)
class AuditRecord:
    at: float
    institution: str
    role: str
    subject: str
    operator: str  # the teller a branch node acted for ("" when the caller acted itself)
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, retention_years: float = RETENTION_YEARS) -> None:
        self.retention = retention_years * YEAR

    def record(self, tx: Tx, *, action: str, target: str, outcome: str,
               detail: Mapping[str, Any] | None = None, caller: Caller | None = None) -> None:
        who = caller or _current.get() or SYSTEM
        if detail:
            leaked = _FORBIDDEN.intersection(k.lower() for k in detail)
            if leaked:
                raise ValueError(f"audit detail may not carry secrets: {sorted(leaked)}")
            text = json.dumps(detail, sort_keys=True, ensure_ascii=False)
        else:
            text = "{}"
        now = time.time()
        tx.execute(
            "INSERT INTO audit_log (id, at, institution, role, subject, operator, action, target,"
            " outcome, detail, keep_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (os.urandom(16).hex(), now, who.institution, who.role.value, who.subject,
             who.operator, action, target, outcome, text, now + self.retention),
        )

    def for_target(self, tx: Tx, target: str, limit: int = 100) -> list[AuditRecord]:
        rows = tx.all(
            "SELECT at, institution, role, subject, operator, action, target, outcome, detail"
            " FROM audit_log WHERE target = ? ORDER BY at DESC LIMIT ?", (target, limit))
        return [AuditRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8]))
                for r in rows]

    def prune(self, tx: Tx, now: float | None = None) -> int:
        """Delete records past their retention time; returns how many."""
        return tx.execute("DELETE FROM audit_log WHERE keep_until < ?",
                          (time.time() if now is None else now,))
