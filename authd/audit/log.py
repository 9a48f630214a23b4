"""Writing audit records, and reading them back for one object.

Records are written inside the same transaction as the change they describe, so a change
without its record (or a record of a change that rolled back) cannot exist. ``detail`` must
never hold a secret; its keys are checked against a list of forbidden ones. A record holds no
retention value: the chain seals its class, the configuration says how long a class is kept.

A record names who did what (institution, role, subject, action, outcome) by a code into
``audit_kinds``. A code is remembered in process only once it was seen committed — read back
by a transaction that did not create it — so a code from a transaction that rolled back is
never reused.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from authd.audit.records import SELECT_RECORDS, AuditRecord, encode_detail
from authd.context import SYSTEM, Caller, _current
from authd.storage import Tx

_FORBIDDEN = {"pin", "puk", "seed", "secret", "code", "codes", "key", "password", "answer"}
_INSERT = ("INSERT INTO audit_log (at_us, kind, target, detail, customer)"
           " VALUES (?, ?, ?, ?, ?)")
# The same for many rows in one statement (PostgreSQL): ids are drawn in the rows' order.
_INSERT_ARRAYS = ("INSERT INTO audit_log (at_us, kind, target, detail, customer)"
                  " SELECT at_us, kind, target, detail, customer FROM unnest("
                  "?::bigint[], ?::integer[], ?::text[], ?::text[], ?::text[])"
                  " WITH ORDINALITY AS r(at_us, kind, target, detail, customer, n) ORDER BY n")
# at_us, kind, target, detail, customer
AuditRow = tuple[int, int, str, str, str | None]


_SAFE_KEYS: set[tuple[str, ...]] = set()


def _check_keys(keys: tuple[str, ...]) -> None:
    if keys in _SAFE_KEYS:
        return
    leaked = _FORBIDDEN.intersection(k.lower() for k in keys)
    if leaked:
        raise ValueError(f"audit detail may not carry secrets: {sorted(leaked)}")
    if len(_SAFE_KEYS) < 4096:
        _SAFE_KEYS.add(keys)


class _Codes:
    """Codes of a lookup table (``audit_kinds``)."""

    def __init__(self, table: str, columns: tuple[str, ...]) -> None:
        where = " AND ".join(f"{c} = ?" for c in columns)
        self._select = f"SELECT code FROM {table} WHERE {where}"
        self._insert = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
                        f" ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING RETURNING code")
        self._committed: dict[tuple[str, ...], int] = {}
        # codes each open transaction created itself (not known to be committed)
        self._created: weakref.WeakKeyDictionary[Tx, set[int]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def code(self, tx: Tx, key: tuple[str, ...]) -> int:
        code = self._committed.get(key)
        if code is not None:
            return code
        with self._lock:
            created = self._created.setdefault(tx, set())
        row = tx.one(self._select, key)
        if row is not None:
            code = int(row[0])
            if code not in created:
                self._committed[key] = code
            return code
        # A new combination is inserted in the caller's transaction (so it commits, or not, with
        # the record). On PostgreSQL a second writer inserting the same new combination waits
        # for the first; should that close a lock cycle, the store reports a deadlock and the
        # transaction is retried (Database.run). It happens once per new combination.
        row = tx.one(self._insert, key)
        if row is None:  # another transaction committed it meanwhile
            row = tx.one(self._select, key)
            assert row is not None
            self._committed[key] = int(row[0])
            return int(row[0])
        created.add(int(row[0]))
        return int(row[0])


class AuditLog:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._kinds = _Codes("audit_kinds", ("institution", "role", "subject", "action",
                                              "outcome"))

    def record(self, tx: Tx, *, action: str, target: str, outcome: str,
               detail: Mapping[str, Any] | None = None, caller: Caller | None = None,
               customer: str | None = None) -> None:
        """One record in ``tx``. ``customer``: the institution's reference of the customer the
        change concerns, where the caller knows it (searchable with the institution)."""
        tx.execute(_INSERT, self.row(tx, action=action, target=target, outcome=outcome,
                                     detail=detail, caller=caller, customer=customer))

    def row(self, tx: Tx, *, action: str, target: str, outcome: str,
            detail: Mapping[str, Any] | None = None, caller: Caller | None = None,
            customer: str | None = None) -> AuditRow:
        """A record as ``record`` writes it, checked, to write later in ``tx`` with others
        (``insert``): many records of one transaction then cost one statement."""
        who = caller or _current.get() or SYSTEM
        if who.operator and (not detail or "operator" not in detail):
            # The teller a branch node acted for, beside the terminal (the subject).
            detail = {**(detail or {}), "operator": who.operator}
        if detail:
            _check_keys(tuple(detail))
        text = encode_detail(detail)
        if "\x00" in f"{action}{target}{outcome}{text}{customer or ''}{who.subject}" \
                f"{who.institution}":
            raise ValueError("audit records may not hold NUL characters")
        return (int(self.clock() * 1_000_000),
                self._kinds.code(tx, (who.institution, who.role.value, who.subject, action,
                                      outcome)),
                target, text, customer or None)

    @staticmethod
    def insert(tx: Tx, rows: Sequence[AuditRow]) -> None:
        """Write records made by ``row``, their ids in the order given. On PostgreSQL one
        statement for all of them (the columns travel as arrays); on SQLite one
        ``executemany``."""
        if not rows:
            return
        if tx.dialect != "postgresql":
            tx.executemany(_INSERT, rows)
            return
        at, kind, target, detail, customer = (list(column) for column in zip(*rows,
                                                                             strict=True))
        tx.execute(_INSERT_ARRAYS, (at, kind, target, detail, customer))

    def for_target(self, tx: Tx, target: str, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` records of one object, newest first."""
        rows = tx.all(f"{SELECT_RECORDS} WHERE a.target = ? ORDER BY a.id DESC LIMIT ?",
                      (target, limit))
        return [AuditRecord.from_row(r) for r in rows]
