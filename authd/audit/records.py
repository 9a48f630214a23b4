"""Audit records as stored, and the canonical bytes the hash chain covers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authd.storage.database import Database, Row

_FIELDS = ("COALESCE(k.institution, '')", "COALESCE(k.role, '')", "COALESCE(k.subject, '')",
           "COALESCE(k.action, '')", "a.target", "COALESCE(k.outcome, '')", "a.detail")
# A record's canonical text, built by the store itself (the same SQL on SQLite and PostgreSQL):
# time in microseconds, then every field as <characters>:<text>, then the customer reference
# or "-". The writer refuses NUL characters, so the lengths parse the text unambiguously.
CANONICAL = (
    "CAST(a.at_us AS TEXT) || '|' || "
    + " || ".join(f"CAST(length({f}) AS TEXT) || ':' || {f}" for f in _FIELDS)
    + " || CASE WHEN a.customer IS NULL THEN '-'"
      " ELSE CAST(length(a.customer) AS TEXT) || ':' || a.customer END")
# Every record query starts here (``a`` is audit_log, ``k`` audit_kinds); a code without its
# audit_kinds row reads as empty text, so such a record no longer matches what was sealed.
FROM_RECORDS = "FROM audit_log a LEFT JOIN audit_kinds k ON k.code = a.kind"
SELECT_RECORDS = (f"SELECT a.id, a.at_us, {', '.join(_FIELDS)}, a.customer, {CANONICAL}"
                  f" {FROM_RECORDS}")
LEAF_BYTES = 16  # 128-bit record hashes: second preimages stay out of reach
_LEAF_BASE = hashlib.sha256(b"authd-audit-record-v1\x00")


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at_us: int  # microseconds since the epoch
    institution: str
    role: str
    subject: str
    action: str
    target: str
    outcome: str
    detail_text: str
    customer: str | None = None
    canonical: str = ""  # as the store built it (SELECT_RECORDS)

    @property
    def at(self) -> float:
        return self.at_us / 1e6

    @property
    def detail(self) -> dict[str, Any]:
        try:
            value = json.loads(self.detail_text)
        except ValueError:
            return {"unreadable_detail": self.detail_text}
        return value if isinstance(value, dict) else {"detail": value}

    @classmethod
    def from_row(cls, row: Row) -> AuditRecord:
        return cls(int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7],
                   row[8], row[9], row[10])

    def leaf(self) -> bytes:
        """The record's hash in the chain. The id is not part of it: the block binds each hash
        to its id by position, so a record moved to another id is recognised as moved."""
        return leaf_of(self.canonical)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "institution": self.institution,
                "role": self.role, "subject": self.subject, "action": self.action,
                "target": self.target, "outcome": self.outcome, "detail": self.detail,
                "customer": self.customer or ""}


def leaf_of(canonical: str) -> bytes:
    h = _LEAF_BASE.copy()
    h.update(canonical.encode("utf-8"))
    return h.digest()[:LEAF_BYTES]


def canonical_of(at_us: int, texts: Sequence[str], customer: str | None) -> str:
    """What CANONICAL builds in the store, in Python (for checking one against the other)."""
    body = "".join(f"{len(t)}:{t}" for t in texts)
    tail = "-" if customer is None else f"{len(customer)}:{customer}"
    return f"{at_us}|{body}{tail}"


_DETAIL_CACHE: dict[tuple[tuple[str, Any], ...], str] = {}
_DETAIL_CACHE_MAX = 4096


def encode_detail(detail: Mapping[str, Any] | None) -> str:
    """Compact, key-sorted JSON; ``{}`` for none. Small details recur (``{"failures":0}``):
    their text is remembered."""
    if not detail:
        return "{}"
    try:
        key = tuple(sorted(detail.items()))
        cached = _DETAIL_CACHE.get(key)
    except TypeError:  # unhashable values: encode every time
        key, cached = (), None
    if cached is not None:
        return cached
    text = json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if key and len(_DETAIL_CACHE) < _DETAIL_CACHE_MAX and len(text) <= 64:
        _DETAIL_CACHE[key] = text
    return text


def fetch_all(db: Database, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    """The rows of one query, in a read transaction of its own."""
    return db.run(lambda tx: tx.all(sql, params), write=False)


def fetch_one(db: Database, sql: str, params: Sequence[Any] = ()) -> Row | None:
    return db.run(lambda tx: tx.one(sql, params), write=False)
