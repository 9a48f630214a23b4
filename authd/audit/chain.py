"""Sealing: records are chained after they commit, in id order, by one sealer at a time.

Writers only insert their record (an id from the store's sequence) in the transaction of the
change it describes: no chain head is read or updated there, so writer threads and center
nodes never wait for each other on the audit trail. A sealer (every node runs one; a lock lets
one at a time through) then seals the next *settled* range of ids into a signed block:

- SQLite: writers are serialized and ids are never reused (AUTOINCREMENT), so every id up to the
  largest committed one is settled.
- PostgreSQL: ids come from a sequence when a record is inserted, and transactions commit in any
  order. The sealer reads the sequence's last value L and the server's clock t, then waits until
  no authd session (``application_name``) has a transaction that began at or before t. Any id up
  to L was handed out before t, so its transaction has then committed or rolled back: ids up to
  L are settled, and an id missing below L can never appear later.

An id settled but absent (a rolled-back transaction) is simply not listed in the block; a record
that appears later with such an id was not written by authd and is reported as inserted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authd.audit.blocks import BLOCK_COLUMNS, GENESIS, Block, Body, block_hash
from authd.audit.records import CANONICAL, FROM_RECORDS, leaf_of
from authd.audit.settings import AuditSettings
from authd.audit.signing import Signer
from authd.storage import Database, Tx
from authd.storage.database import APPLICATION_NAME, Row

log = logging.getLogger("authd.audit")

BLOCK_MAX = 20_000  # records per block: a backlog is sealed in several blocks
_PG_SEAL_LOCK = 0x61756469  # "audi"
_SETTLE_POLL = 0.005
# What sealing needs of a record: id, time, action and detail (its class), whether its
# audit_kinds row is missing, and its canonical text (its hash).
_SEAL_SELECT = (
    f"SELECT a.id, a.at_us, k.action, a.detail, CASE WHEN k.code IS NULL THEN 1 ELSE 0 END,"
    f" {CANONICAL} {FROM_RECORDS} WHERE a.id > ? AND a.id <= ? ORDER BY a.id LIMIT ?")


def read_head(tx: Tx) -> Block | None:
    row = tx.one(f"SELECT {BLOCK_COLUMNS} FROM audit_blocks ORDER BY seq DESC LIMIT 1")
    return Block.from_row(row) if row is not None else None


def pg_sequence(tx: Tx) -> str:
    row = tx.one("SELECT pg_get_serial_sequence('audit_log', 'id')")
    if row is None or not row[0]:
        raise RuntimeError("audit_log.id has no sequence")
    return str(row[0])


@dataclass
class SealStats:
    blocks: int = 0
    records: int = 0
    not_settled: int = 0


class Sealer:
    """Seals committed audit records into signed blocks; safe to run on every node at once."""

    def __init__(self, db: Database, signer: Signer, settings: AuditSettings, *,
                 witness: Path | None = None, clock: Callable[[], float] = time.time,
                 settle_timeout: float = 5.0) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings
        self.witness = witness
        self.clock = clock
        self.settle_timeout = settle_timeout
        self.stats = SealStats()
        self._sequence: str | None = None
        self._witnessed_at = 0.0

    # ------------------------------------------------------------------ boundary

    def _settled_boundary(self) -> int | None:
        """The largest id up to which every id is settled (None: not now)."""
        if self.db.dialect == "sqlite":
            row = self.db.run(lambda tx: tx.one("SELECT MAX(id) FROM audit_log"), write=False)
            return int(row[0]) if row and row[0] is not None else 0
        if self._sequence is None:
            self._sequence = self.db.run(pg_sequence, write=False)
        seq = self._sequence
        row = self.db.run(lambda tx: tx.one(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END, clock_timestamp()"
            f" FROM {seq}"), write=False)
        assert row is not None
        last, started = int(row[0]), row[1]
        deadline = time.monotonic() + self.settle_timeout
        while True:
            open_before = self.db.run(lambda tx: tx.one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = ? AND pid <> pg_backend_pid()"
                " AND (state IS NULL OR state <> 'idle')"
                " AND (xact_start IS NULL OR xact_start <= ?)",
                (APPLICATION_NAME, started)), write=False)
            if open_before is not None and int(open_before[0]) == 0:
                return last
            if time.monotonic() > deadline:
                self.stats.not_settled += 1
                log.warning("audit sealing waits: a transaction open since before %s has not "
                            "ended", started)
                return None
            time.sleep(_SETTLE_POLL)

    # ------------------------------------------------------------------ sealing

    def seal(self) -> int:
        """Seal everything settled now (in blocks of at most BLOCK_MAX records), and an empty
        heartbeat block when the head is older than ``heartbeat``; returns blocks written."""
        boundary = self._settled_boundary()
        if boundary is None:
            return 0
        written = 0
        while True:
            block = self._seal_once(boundary)
            if block is None:
                break
            written += 1
            if block.last_id >= boundary:
                break
        self.keep_witness()
        return written

    def _seal_once(self, boundary: int) -> Block | None:
        def read(tx: Tx) -> tuple[Block | None, list[Row]]:
            head = read_head(tx)
            after = head.last_id if head else 0
            return head, tx.all(_SEAL_SELECT, (after, boundary, BLOCK_MAX))

        head, rows = self.db.run(read, write=False)
        dangling = next((int(r[0]) for r in rows if r[4]), None)
        if dangling is not None:
            # Its caller or event row was removed: sealing it would seal the loss.
            log.error("audit record %d refers to an audit_kinds row that is gone; sealing "
                      "stops here (run authd audit verify)", dangling)
            rows = [r for r in rows if int(r[0]) < dangling]
            if not rows:
                return None
            boundary = int(rows[-1][0])
        now = self.clock()
        after = head.last_id if head else 0
        if not rows and head is not None and (
                boundary <= head.last_id and now - head.sealed_at < self.settings.heartbeat):
            return None
        last_id = int(rows[-1][0]) if len(rows) == BLOCK_MAX else max(boundary, after)
        block = self._make_block(head, rows, after + 1, last_id, now)

        def write(tx: Tx) -> bool:
            if tx.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", (_PG_SEAL_LOCK,))
            current = read_head(tx)
            if (current.seq if current else 0) != (head.seq if head else 0):
                return False  # another sealer got there first
            tx.execute(f"INSERT INTO audit_blocks ({BLOCK_COLUMNS}) VALUES"
                       " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", block.row())
            return True

        if not self.db.run(write):
            return None
        self.stats.blocks += 1
        self.stats.records += len(rows)
        return block

    def _make_block(self, head: Block | None, rows: list[Row], first_id: int, last_id: int,
                    now: float) -> Block:
        classify = self.settings.classify_text
        body = Body(tuple(int(r[0]) for r in rows), tuple(classify(r[2], r[3]) for r in rows),
                    tuple(leaf_of(r[5]) for r in rows)).encode()
        digest = hashlib.sha256(body).digest()
        times = [int(r[1]) for r in rows]
        at_min, at_max = (min(times) / 1e6, max(times) / 1e6) if times else (0.0, 0.0)
        at_hi = max(at_max, head.at_hi if head else 0.0)
        seq = (head.seq if head else 0) + 1
        prev = head.hash if head else GENESIS
        key_id = self.signer.key_id
        digest_of_block = block_hash(seq, first_id, last_id, len(rows), at_min, at_max,
                                     at_hi, now, digest, prev, key_id)
        return Block(seq, first_id, last_id, len(rows), at_min, at_max, at_hi, now, body,
                     digest, prev, digest_of_block, key_id, self.signer.sign(digest_of_block))

    # ------------------------------------------------------------------ witness

    def keep_witness(self, force: bool = False) -> None:
        """Keep the store's current head outside the store (a node's own file)."""
        if self.witness is None:
            return
        now = time.monotonic()
        if not force and now - self._witnessed_at < min(self.settings.heartbeat, 60.0):
            return
        head = self.db.run(read_head, write=False)
        if head is None:
            return
        write_witness(self.witness, head)
        self._witnessed_at = now


def write_witness(path: Path, head: Block) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(head.head(), sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_witness(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"witness file {path} is unreadable: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("seq"), int) or \
            not isinstance(value.get("hash"), str):
        raise ValueError(f"witness file {path} does not hold an audit head")
    return value


class SealerThread:
    """Runs a sealer every ``seal_interval`` seconds until stopped; a last round at stop."""

    def __init__(self, sealer: Sealer) -> None:
        self.sealer = sealer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authd-audit-sealer",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        interval = self.sealer.settings.seal_interval
        while not self._stop.wait(interval):
            self._round()

    def _round(self) -> None:
        try:
            self.sealer.seal()
        except Exception:
            log.exception("audit sealing round failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._round()
        try:
            self.sealer.keep_witness(force=True)
        except Exception:
            log.exception("writing the audit witness failed")
