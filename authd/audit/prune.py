"""Pruning records past their retention (``authd prune-audit``) without breaking the chain.

What decides is what the chain sealed, never a value in the record's row: a record's class is
in its block's body, and its age is bounded by the block's ``at_max`` (both signed). A record of
class C goes once ``at_max + retention(C)`` has passed. Before anything is deleted, every block
concerned is checked (header hash, signature, every record against its sealed hash): if one was
tampered with, nothing is pruned. Each deleting transaction also writes a signed checkpoint
("in blocks up to N, records of class C in blocks older than cutoff[C] are gone"), so
``authd audit verify`` tells pruned records from deleted ones. When every record of the oldest
blocks is gone, their bodies are dropped too (``compacted_through``); headers stay, so the
chain still links.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from authd.audit.blocks import (
    BLOCK_COLUMNS,
    PRUNE_COLUMNS,
    Block,
    Body,
    BodyError,
    PruneCheckpoint,
)
from authd.audit.records import SELECT_RECORDS, AuditRecord, fetch_all, fetch_one
from authd.audit.settings import AuditSettings
from authd.audit.signing import KeyRing, Signer
from authd.storage import Database, Tx
from devices.errors import WrongState

DELETE_CHUNK = 500
TX_RECORDS = 20_000  # records deleted per transaction (each with its checkpoint)


@dataclass
class PrunePlan:
    cutoffs: dict[str, float]
    # per block: the ids to delete
    deletions: list[tuple[Block, list[int]]] = field(default_factory=list)
    compact_through: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(ids) for _, ids in self.deletions)


def _trusted_checkpoints(db: Database, keys: KeyRing) -> list[PruneCheckpoint]:
    rows = db.run(lambda tx: tx.all(f"SELECT {PRUNE_COLUMNS} FROM audit_prunes ORDER BY seq"),
                  write=False)
    checkpoints = [PruneCheckpoint.from_row(r) for r in rows]
    return [cp for cp in checkpoints if keys.verify(cp.key_id, cp.digest(), cp.signature)]


def _candidates(db: Database, cutoffs: dict[str, float],
                done: list[PruneCheckpoint]) -> list[int]:
    """Blocks holding a class that is due now and was not due at an earlier prune."""
    rows = db.run(lambda tx: tx.all(
        "SELECT seq, at_max FROM audit_blocks WHERE at_max < ? AND record_count > 0"
        " AND body IS NOT NULL ORDER BY seq", (max(cutoffs.values()),)), write=False)
    wanted = []
    for seq, at_max in rows:
        due = {c for c, cut in cutoffs.items() if float(at_max) < cut}
        already = {c for cp in done if int(seq) <= cp.through_block
                   for c, cut in cp.cutoffs.items() if float(at_max) < cut}
        if due - already:
            wanted.append(int(seq))
    return wanted


def plan(db: Database, settings: AuditSettings, keys: KeyRing, now: float) -> PrunePlan:
    """What pruning at ``now`` would delete, after checking every block concerned."""
    cutoffs = settings.cutoffs(now)
    result = PrunePlan(cutoffs)
    oldest_kept = min(cutoffs.values())
    for seq in _candidates(db, cutoffs, _trusted_checkpoints(db, keys)):
        row = fetch_one(db, f"SELECT {BLOCK_COLUMNS} FROM audit_blocks WHERE seq = ?", (seq,))
        if row is None:
            continue
        block = Block.from_row(row)
        problem = _check_block(block, keys)
        if problem:
            result.problems.append(problem)
            continue
        body = Body.decode(block.body or b"")
        rows = fetch_all(db, f"{SELECT_RECORDS} WHERE a.id >= ? AND a.id <= ?"
                         " ORDER BY a.id", (block.first_id, block.last_id))
        sealed = dict(zip(body.ids, zip(body.classes, body.leaves, strict=True), strict=True))
        doomed = []
        for r in rows:
            record = AuditRecord.from_row(r)
            entry = sealed.get(record.id)
            if entry is None or record.leaf() != entry[1]:
                result.problems.append(f"record {record.id} (block {block.seq}) does not match "
                                       f"what the chain sealed")
                continue
            if block.at_max < cutoffs.get(entry[0], oldest_kept):
                doomed.append(record.id)
        if doomed:
            result.deletions.append((block, doomed))
    result.compact_through = _compactable_prefix(db, oldest_kept)
    return result


def _check_block(block: Block, keys: KeyRing) -> str:
    if block.body is None or hashlib.sha256(block.body).digest() != block.body_digest:
        return f"block {block.seq}'s body does not match its digest"
    if block.computed_hash() != block.hash:
        return f"block {block.seq}'s header was edited"
    if not keys.verify(block.key_id, block.hash, block.signature):
        return f"block {block.seq} is not signed by a trusted key"
    try:
        Body.decode(block.body)
    except BodyError as exc:
        return f"block {block.seq}: {exc}"
    return ""


def _compactable_prefix(db: Database, oldest_kept: float) -> int:
    """The last block of the oldest run whose every record is past every class's retention."""
    rows = db.run(lambda tx: tx.all(
        "SELECT seq, at_max, record_count FROM audit_blocks WHERE seq > COALESCE("
        "(SELECT MAX(compacted_through) FROM audit_prunes), 0) ORDER BY seq LIMIT 100000"),
        write=False)
    through = 0
    for seq, at_max, count in rows:
        if int(count) and float(at_max) >= oldest_kept:
            break
        through = int(seq)
    return through


def _delete(tx: Tx, ids: list[int]) -> int:
    removed = 0
    for i in range(0, len(ids), DELETE_CHUNK):
        chunk = ids[i:i + DELETE_CHUNK]
        removed += max(0, tx.execute(
            f"DELETE FROM audit_log WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    return removed


def apply(db: Database, signer: Signer, p: PrunePlan, now: float | None = None) -> int:
    """Delete what ``p`` names, in transactions that each carry their signed checkpoint."""
    if p.problems:
        raise WrongState("the audit trail was tampered with; nothing pruned: "
                                 + "; ".join(p.problems[:5]))
    now = time.time() if now is None else now
    groups: list[list[tuple[Block, list[int]]]] = [[]]
    size = 0
    for block, ids in p.deletions:
        if size >= TX_RECORDS:
            groups.append([])
            size = 0
        groups[-1].append((block, ids))
        size += len(ids)
    removed = 0
    for index, group in enumerate(groups):
        last = index == len(groups) - 1
        through = max((b.seq for b, _ in group), default=0)
        if last:
            through = max(through, p.compact_through)
        if not group and not (last and p.compact_through):
            continue

        def work(tx: Tx, group: list[tuple[Block, list[int]]] = group, through: int = through,
                 last: bool = last) -> int:
            n = sum(_delete(tx, ids) for _, ids in group)
            compacted = 0
            if last and p.compact_through and tx.one(
                    "SELECT 1 FROM audit_log WHERE id <= (SELECT last_id FROM audit_blocks"
                    " WHERE seq = ?) LIMIT 1", (p.compact_through,)) is None:
                tx.execute("UPDATE audit_blocks SET body = NULL WHERE seq <= ?",
                           (p.compact_through,))
                compacted = p.compact_through
            previous = tx.one("SELECT MAX(seq), MAX(compacted_through) FROM audit_prunes")
            seq = int(previous[0]) + 1 if previous and previous[0] is not None else 1
            compacted = max(compacted, int(previous[1]) if previous and previous[1] else 0)
            unsigned = PruneCheckpoint(seq, now, through, compacted, p.cutoffs, n,
                                       signer.key_id, b"")
            cp = PruneCheckpoint(seq, now, through, compacted, p.cutoffs, n, signer.key_id,
                                 signer.sign(unsigned.digest()))
            tx.execute(f"INSERT INTO audit_prunes ({PRUNE_COLUMNS}) VALUES"
                       " (?, ?, ?, ?, ?, ?, ?, ?)", cp.row())
            return n

        removed += db.run(work)
    return removed
