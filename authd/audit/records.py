"""Audit records as stored, and the canonical bytes the hash chain covers."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from authd.storage.database import Database, Row

# The columns of audit_log in the order every query here reads them.
COLUMNS = "id, at, institution, role, subject, action, target, outcome, detail, customer"
LEAF_BYTES = 16  # 128-bit record hashes: second preimages stay out of reach
_LEAF_DOMAIN = b"authd-audit-record-v1\x00"


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: float
    institution: str
    role: str
    subject: str
    action: str
    target: str
    outcome: str
    detail_text: str
    customer: str | None = None

    @property
    def detail(self) -> dict[str, Any]:
        try:
            value = json.loads(self.detail_text)
        except ValueError:
            return {"unreadable_detail": self.detail_text}
        return value if isinstance(value, dict) else {"detail": value}

    @classmethod
    def from_row(cls, row: Row) -> AuditRecord:
        return cls(int(row[0]), float(row[1]), row[2], row[3], row[4], row[5], row[6], row[7],
                   row[8], row[9])

    def leaf(self) -> bytes:
        """The record's hash in the chain. The id is not part of it: the block binds each hash
        to its id by position, so a record moved to another id is recognised as moved."""
        return leaf_of(self.at, (self.institution, self.role, self.subject, self.action,
                                 self.target, self.outcome, self.detail_text), self.customer)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "institution": self.institution,
                "role": self.role, "subject": self.subject, "action": self.action,
                "target": self.target, "outcome": self.outcome, "detail": self.detail,
                "customer": self.customer or ""}


def leaf_of(at: float, texts: tuple[str, ...], customer: str | None) -> bytes:
    h = hashlib.sha256(_LEAF_DOMAIN)
    h.update(struct.pack(">d", at))
    for text in texts:
        raw = text.encode("utf-8")
        h.update(struct.pack(">I", len(raw)))
        h.update(raw)
    if customer is None:
        h.update(b"\x00")
    else:
        raw = customer.encode("utf-8")
        h.update(b"\x01" + struct.pack(">I", len(raw)) + raw)
    return h.digest()[:LEAF_BYTES]


def encode_detail(detail: Mapping[str, Any] | None) -> str:
    """Compact, key-sorted JSON; ``{}`` for none."""
    if not detail:
        return "{}"
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fetch_all(db: Database, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    """The rows of one query, in a read transaction of its own."""
    return db.run(lambda tx: tx.all(sql, params), write=False)


def fetch_one(db: Database, sql: str, params: Sequence[Any] = ()) -> Row | None:
    return db.run(lambda tx: tx.one(sql, params), write=False)
