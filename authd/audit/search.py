"""Searching the audit trail: by institution, customer reference, target, time, outcome, action.

Indexes: ``target`` and ``customer`` (rows with a customer reference only). There is no index
on time: ids follow the order records were sealed in, and each block knows the largest record
time up to it (``at_hi``, never decreasing), so a time range becomes an id range through the
blocks (found through their own small index), then records are filtered on their time.
``clock_skew`` widens the range's end for writers whose clocks run behind the others'. An
institution, outcome or action alone filters the records of the id range (no index of their
own: a record costs less to write, and these searches are an auditor's, not a verification's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from authd import validate
from authd.audit.records import SELECT_RECORDS, AuditRecord
from authd.storage import Database, Tx
from devices.errors import BadRequest

MAX_TEXT = 128
# The latest time a bound may name: 9999-12-31T23:59:59Z. Its microseconds still fit the
# stores' 64-bit integers (a larger bound would overflow SQLite's and be refused by
# PostgreSQL's).
MAX_TIME = 253402300799.0


@dataclass(frozen=True)
class AuditQuery:
    institution: str = ""
    customer: str = ""
    target: str = ""
    since: float = 0.0  # 0: no bound
    until: float = 0.0
    outcomes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    oldest_first: bool = False

    def __post_init__(self) -> None:
        for name in ("institution", "customer", "target"):
            validate.text(getattr(self, name), name, max_length=MAX_TEXT)
        if self.customer and not self.institution:
            raise BadRequest("a customer reference belongs to one institution: "
                             "give the institution too", field="customer")
        for name in ("since", "until"):
            validate.finite(getattr(self, name), name, minimum=0, maximum=MAX_TIME)
        if self.since and self.until and self.since > self.until:
            raise BadRequest("since is after until", field="since")
        for values, what in ((self.outcomes, "outcome"), (self.actions, "action")):
            if len(values) > 32 or any(not v or len(v) > MAX_TEXT for v in values):
                raise BadRequest(f"up to 32 {what}s of 1..{MAX_TEXT} characters",
                                 field=f"{what}s")
            for value in values:
                validate.text(value, f"{what}s", max_length=MAX_TEXT)


def _id_bounds(tx: Tx, q: AuditQuery, clock_skew: float) -> tuple[int | None, int | None]:
    low = high = None
    if q.since:
        row = tx.one("SELECT first_id FROM audit_blocks WHERE at_hi >= ?"
                     " ORDER BY at_hi, seq LIMIT 1", (q.since,))
        if row is not None:
            low = int(row[0])
        else:  # every sealed record is older: only records not sealed yet can match
            head = tx.one("SELECT MAX(last_id) FROM audit_blocks")
            low = int(head[0]) + 1 if head and head[0] is not None else None
    if q.until:
        row = tx.one("SELECT last_id FROM audit_blocks WHERE at_hi > ?"
                     " ORDER BY at_hi, seq LIMIT 1", (q.until + clock_skew,))
        if row is not None:
            high = int(row[0])
    return low, high


def search(tx: Tx, q: AuditQuery, *, limit: int, after_id: int = 0,
           clock_skew: float = 300.0) -> list[AuditRecord]:
    """Up to ``limit`` records, newest first (or oldest first); ``after_id`` continues a page
    (records past that id in the chosen order)."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (("k.institution", q.institution), ("a.customer", q.customer),
                          ("a.target", q.target)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if q.outcomes:
        where.append(f"k.outcome IN ({', '.join('?' * len(q.outcomes))})")
        params.extend(q.outcomes)
    if q.actions:
        where.append(f"k.action IN ({', '.join('?' * len(q.actions))})")
        params.extend(q.actions)
    if q.since:
        where.append("a.at_us >= ?")
        params.append(int(q.since * 1e6))
    if q.until:
        where.append("a.at_us <= ?")
        params.append(int(q.until * 1e6))
    low, high = _id_bounds(tx, q, clock_skew)
    if low is not None:
        where.append("a.id >= ?")
        params.append(low)
    if high is not None:
        where.append("a.id <= ?")
        params.append(high)
    if after_id:
        where.append("a.id > ?" if q.oldest_first else "a.id < ?")
        params.append(after_id)
    sql = SELECT_RECORDS
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY a.id {'ASC' if q.oldest_first else 'DESC'} LIMIT ?"
    params.append(limit)
    return [AuditRecord.from_row(r) for r in tx.all(sql, params)]


def export(db: Database, q: AuditQuery, *, page: int = 1000,
           clock_skew: float = 300.0) -> Iterator[AuditRecord]:
    """Every matching record, in pages of short read transactions."""
    after = 0
    while True:
        records = _page(db, q, page, after, clock_skew)
        yield from records
        if len(records) < page:
            return
        after = records[-1].id


def _page(db: Database, q: AuditQuery, page: int, after: int,
          clock_skew: float) -> list[AuditRecord]:
    return db.run(lambda tx: search(tx, q, limit=page, after_id=after, clock_skew=clock_skew),
                  write=False)
