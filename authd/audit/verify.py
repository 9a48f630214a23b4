"""Verifying the audit trail against its chain (``authd audit verify``); works on a stopped store.

Walks the blocks in order and the records in id order side by side, and reports:

- ``altered``: a record whose content no longer hashes to what its block sealed;
- ``reordered``: a record holding the content sealed for another id of its block;
- ``deleted`` / ``truncated``: sealed ids that are gone (``truncated`` when every sealed record
  from one id to the chain's end is gone), except where a signed prune checkpoint covers them;
- ``inserted``: a record at an id its block does not list, or before the first block;
- ``block_*``: a block edited, missing, out of sequence, not linked to the one before, or not
  signed by a trusted key; ``witness``: the chain ends before, or differs from, a head a node
  saw earlier; ``stale_head``: the newest signed head is older than allowed.

Records after the newest block are *unsealed* (written within the last sealing interval, or
the sealer is not running): counted and reported, not judged — unless one is dated more than
``clock_skew`` before the newest block was sealed: authd could not have written it then
(``inserted``, backdated).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from authd.audit.blocks import (
    BLOCK_COLUMNS,
    GENESIS,
    PRUNE_COLUMNS,
    Block,
    Body,
    BodyError,
    PruneCheckpoint,
)
from authd.audit.records import SELECT_RECORDS, AuditRecord, fetch_all
from authd.audit.signing import KeyRing
from authd.storage import Database

PAGE = 2000
MAX_FINDINGS = 200
RECORD_KINDS = ("altered", "reordered", "deleted", "truncated", "inserted")


@dataclass(frozen=True)
class Finding:
    kind: str
    message: str
    record_id: int | None = None  # the first record concerned
    last_id: int | None = None  # the last one, for a run of records
    block_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "record_id": self.record_id,
                "last_id": self.last_id, "block": self.block_seq}


@dataclass
class Report:
    blocks: int = 0
    records: int = 0  # sealed records checked
    pruned: int = 0  # sealed ids legitimately absent (signed prune checkpoints)
    unsealed: int = 0
    oldest_unsealed_at: float | None = None
    head: Block | None = None
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    key_source: str = ""

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def first_bad_record(self) -> int | None:
        ids = [f.record_id for f in self.findings if f.record_id is not None]
        return min(ids) if ids else None

    def add(self, finding: Finding) -> None:
        self.counts[finding.kind] = self.counts.get(finding.kind, 0) + 1
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "blocks": self.blocks, "records": self.records,
                "pruned": self.pruned, "unsealed": self.unsealed,
                "oldest_unsealed_at": self.oldest_unsealed_at,
                "head": self.head.head() if self.head else None,
                "first_bad_record": self.first_bad_record, "counts": self.counts,
                "findings": [f.as_dict() for f in sorted(self.findings, key=_order)],
                "keys": self.key_source}


def _order(f: Finding) -> tuple[int, int]:
    return (f.record_id if f.record_id is not None else 1 << 62, f.block_seq or 0)


class _Records:
    """All records in id order, read in pages (keyset), with one record of look-ahead."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._iter = self._pages()
        self._next: AuditRecord | None = next(self._iter, None)

    def _pages(self) -> Iterator[AuditRecord]:
        first = self._db.run(lambda tx: tx.one("SELECT MIN(id) FROM audit_log"), write=False)
        if first is None or first[0] is None:
            return
        after = int(first[0]) - 1
        while True:
            rows = fetch_all(self._db, f"{SELECT_RECORDS} WHERE a.id > ? ORDER BY a.id LIMIT ?",
                             (after, PAGE))
            for row in rows:
                yield AuditRecord.from_row(row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1][0])

    def peek(self) -> AuditRecord | None:
        return self._next

    def take(self) -> AuditRecord:
        record = self._next
        assert record is not None
        self._next = next(self._iter, None)
        return record


def _blocks(db: Database) -> Iterator[Block]:
    after = -(1 << 62)
    while True:
        rows = fetch_all(db, f"SELECT {BLOCK_COLUMNS} FROM audit_blocks WHERE seq > ?"
                         " ORDER BY seq LIMIT ?", (after, 500))
        for row in rows:
            yield Block.from_row(row)
        if len(rows) < 500:
            return
        after = int(rows[-1][0])


class Verifier:
    def __init__(self, db: Database, keys: KeyRing, *, witness: dict[str, Any] | None = None,
                 max_head_age: float | None = None, now: float | None = None,
                 clock_skew: float = 300.0) -> None:
        self.db = db
        self.keys = keys
        self.witness = witness
        self.max_head_age = max_head_age
        self.now = time.time() if now is None else now
        self.clock_skew = clock_skew
        self.report = Report(key_source=keys.source)
        # a run of gone ids: first, last, block
        self._missing: tuple[int, int, int] | None = None
        self._last_present_sealed = 0
        self._deleted_runs: list[tuple[int, int, int]] = []

    # ------------------------------------------------------------------ prune checkpoints

    def _checkpoints(self) -> list[PruneCheckpoint]:
        rows = self.db.run(lambda tx: tx.all(
            f"SELECT {PRUNE_COLUMNS} FROM audit_prunes ORDER BY seq"), write=False)
        valid = []
        for row in rows:
            cp = PruneCheckpoint.from_row(row)
            if self.keys.verify(cp.key_id, cp.digest(), cp.signature):
                valid.append(cp)
            else:
                self.report.add(Finding(
                    "prune_signature", f"prune checkpoint {cp.seq} is not signed by a trusted "
                    f"key (forged or edited); the records it claims to have pruned count as "
                    f"deleted"))
        return valid

    # ------------------------------------------------------------------ the walk

    def run(self) -> Report:
        checkpoints = self._checkpoints()
        compacted = max((cp.compacted_through for cp in checkpoints), default=0)
        records = _Records(self.db)
        prev: Block | None = None
        for block in _blocks(self.db):
            self._check_block(block, prev, compacted)
            blocks_missing = block.seq != (prev.seq + 1 if prev else 1)
            self._check_records(block, records, blocks_missing, checkpoints)
            prev = block
            self.report.blocks += 1
        self._flush_missing()
        self._finish_truncation()
        self.report.head = prev
        while records.peek() is not None:
            record = records.take()
            if prev is not None and record.at < prev.sealed_at - self.clock_skew:
                # Written after the newest block was sealed, yet dated well before it.
                self.report.add(Finding(
                    "inserted", f"record {record.id} is not sealed yet but dated "
                    f"{prev.sealed_at - record.at:.0f} s before block {prev.seq} was sealed "
                    f"(backdated)", record_id=record.id))
                continue
            self.report.unsealed += 1
            oldest = self.report.oldest_unsealed_at
            self.report.oldest_unsealed_at = record.at if oldest is None else min(
                oldest, record.at)
        self._check_head(prev)
        return self.report

    def _check_block(self, block: Block, prev: Block | None, compacted: int) -> None:
        r = self.report
        expected_seq = prev.seq + 1 if prev else 1
        expected_first = prev.last_id + 1 if prev else 1
        if block.seq != expected_seq:
            gap_first = expected_first
            r.add(Finding("block_missing", f"blocks {expected_seq}..{block.seq - 1} are missing"
                          f" (records from id {gap_first} on can no longer be checked there)",
                          record_id=gap_first, block_seq=expected_seq))
        elif block.first_id != expected_first or block.last_id < block.first_id - 1:
            r.add(Finding("block_range", f"block {block.seq} covers ids {block.first_id}.."
                          f"{block.last_id}; the chain expects it to start at {expected_first}",
                          record_id=min(block.first_id, expected_first), block_seq=block.seq))
        if block.prev_hash != (prev.hash if prev else GENESIS) and block.seq == expected_seq:
            r.add(Finding("block_link", f"block {block.seq} does not link to block "
                          f"{block.seq - 1} (one of them was replaced)",
                          record_id=block.first_id, block_seq=block.seq))
        if block.body is not None and hashlib.sha256(block.body).digest() != block.body_digest:
            r.add(Finding("block_altered", f"block {block.seq}'s body was edited",
                          record_id=block.first_id, block_seq=block.seq))
        elif block.body is None and block.seq > compacted:
            r.add(Finding("block_altered", f"block {block.seq} lost its body, and no signed "
                          f"prune checkpoint says it was compacted",
                          record_id=block.first_id, block_seq=block.seq))
        if block.computed_hash() != block.hash:
            r.add(Finding("block_altered", f"block {block.seq}'s header was edited",
                          record_id=block.first_id, block_seq=block.seq))
        elif not self.keys.knows(block.key_id):
            r.add(Finding("block_signature", f"block {block.seq} is signed by key "
                          f"{block.key_id}, which is not trusted ({self.keys.source})",
                          record_id=block.first_id, block_seq=block.seq))
        elif not self.keys.verify(block.key_id, block.hash, block.signature):
            r.add(Finding("block_signature", f"block {block.seq}'s signature is invalid",
                          record_id=block.first_id, block_seq=block.seq))

    def _check_records(self, block: Block, records: _Records, blocks_missing: bool,
                       checkpoints: list[PruneCheckpoint]) -> None:
        body: Body | None = None
        if block.body is not None:
            try:
                body = Body.decode(block.body)
            except BodyError as exc:
                self.report.add(Finding("block_altered", f"block {block.seq}: {exc}",
                                        record_id=block.first_id, block_seq=block.seq))
        expected = dict(zip(body.ids, zip(body.classes, body.leaves, strict=True), strict=True)) \
            if body else {}
        if body is not None and len(body.ids) != block.record_count:
            self.report.add(Finding("block_altered", f"block {block.seq} lists "
                                    f"{len(body.ids)} records, its header {block.record_count}",
                                    record_id=block.first_id, block_seq=block.seq))
        by_leaf: dict[bytes, int] | None = None
        present: set[int] = set()
        while (rec := records.peek()) is not None and rec.id <= block.last_id:
            records.take()
            if rec.id < block.first_id:
                if not blocks_missing:  # else: the block_missing finding speaks for it
                    self.report.add(Finding("inserted", f"record {rec.id} lies before block "
                                            f"{block.seq} and no block seals it",
                                            record_id=rec.id, block_seq=block.seq))
                continue
            sealed = expected.get(rec.id)
            if sealed is None:
                if body is not None or block.body is None:
                    self.report.add(Finding(
                        "inserted", f"record {rec.id} was not there when block {block.seq} was"
                        f" sealed", record_id=rec.id, block_seq=block.seq))
                continue
            present.add(rec.id)
            self._last_present_sealed = rec.id
            self.report.records += 1
            leaf = rec.leaf()
            if leaf == sealed[1]:
                continue
            if by_leaf is None:
                by_leaf = {lf: i for i, (_, lf) in expected.items()}
            other = by_leaf.get(leaf)
            if other is not None:
                self.report.add(Finding("reordered", f"record {rec.id} holds what block "
                                        f"{block.seq} sealed as record {other}",
                                        record_id=rec.id, block_seq=block.seq))
            else:
                self.report.add(Finding("altered", f"record {rec.id} was changed after block "
                                        f"{block.seq} sealed it", record_id=rec.id,
                                        block_seq=block.seq))
        if body is None:
            return
        for rid in body.ids:
            if rid in present:
                self._flush_missing()
                continue
            cls = expected[rid][0]
            if any(block.seq <= cp.through_block and block.at_max < cp.cutoffs.get(cls, 0.0)
                   for cp in checkpoints):
                self.report.pruned += 1
                continue
            self._note_missing(rid, block.seq)

    def _note_missing(self, rid: int, seq: int) -> None:
        if self._missing is not None and self._missing[1] + 1 == rid:
            self._missing = (self._missing[0], rid, self._missing[2])
        else:
            self._flush_missing()
            self._missing = (rid, rid, seq)

    def _flush_missing(self) -> None:
        if self._missing is not None:
            self._deleted_runs.append(self._missing)
            self._missing = None

    def _finish_truncation(self) -> None:
        """Runs of gone records after the last sealed record still present are one cut."""
        cut = [run for run in self._deleted_runs if run[0] > self._last_present_sealed]
        for first, last, seq in self._deleted_runs:
            if (first, last, seq) in cut:
                continue
            what = f"record {first}" if first == last else f"records {first}..{last}"
            self.report.add(Finding("deleted", f"{what} sealed in block {seq} "
                                    f"{'is' if first == last else 'are'} gone",
                                    record_id=first, last_id=last, block_seq=seq))
        if cut:
            first, last = cut[0][0], cut[-1][1]
            self.report.add(Finding(
                "truncated", f"the trail was cut: every sealed record from {first} to the end "
                f"of the chain ({last}) is gone", record_id=first, last_id=last,
                block_seq=cut[0][2]))

    def _check_head(self, head: Block | None) -> None:
        r = self.report
        w = self.witness
        if w is not None:
            seq, digest = int(w["seq"]), str(w["hash"])
            if head is None or head.seq < seq:
                last = w.get("last_id")
                start = (head.last_id + 1) if head else 1
                r.add(Finding("witness", f"the chain ends at block {head.seq if head else 0}, "
                              f"but block {seq} (records up to {last}) was seen before: the "
                              f"end of the trail was removed", record_id=start,
                              last_id=int(last) if isinstance(last, int) else None,
                              block_seq=seq))
            else:
                row = self.db.run(lambda tx: tx.one(
                    "SELECT hash FROM audit_blocks WHERE seq = ?", (seq,)), write=False)
                if row is None or bytes(row[0]).hex() != digest:
                    r.add(Finding("witness", f"block {seq} differs from the one seen before: "
                                  f"the chain was rewritten from there", block_seq=seq))
        if self.max_head_age is not None:
            age = self.now - head.sealed_at if head else None
            if age is None or age > self.max_head_age:
                r.add(Finding("stale_head", "no signed head" if age is None else
                              f"the newest signed head is {age:.0f} s old (allowed "
                              f"{self.max_head_age:.0f} s): the sealer stopped, or the end of "
                              f"the chain was removed", block_seq=head.seq if head else None))


def verify(db: Database, keys: KeyRing, **options: Any) -> Report:
    return Verifier(db, keys, **options).run()
