"""The tamper-evident audit trail on SQLite and PostgreSQL: rows changed in the store are found.

Each test seals a trail with the signing key on the session's SoftHSM2 token, then changes the
store directly (as someone with database access would) and runs ``authd audit verify``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from authd.audit import AuditLog
from authd.audit.chain import Sealer, read_head
from authd.audit.records import CANONICAL, FROM_RECORDS, canonical_of
from authd.audit.settings import AuditSettings
from authd.audit.signing import KeyRing, Signer, open_signer
from authd.audit.verify import verify
from authd.cli import main as authd_main
from authd.config import Config
from authd.context import Caller, Role
from authd.secrets import prepare_kek_token
from authd.storage import Database, migrate, open_database
from tests.conftest import KEK_PIN_FILE, make_config

CALLERS = [Caller("bank-a", Role.BACKEND, "ib-a"), Caller("bank-b", Role.BRANCH, "teller-7"),
           Caller("bank-c", Role.BACKEND, "ib-c")]


@dataclass
class Trail:
    cfg: Config
    url: str
    db: Database
    signer: Signer
    sealer: Sealer
    log: AuditLog
    witness: Path

    @property
    def keys(self) -> KeyRing:
        return KeyRing([self.signer.public_key], "test key")

    def write(self, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            caller = CALLERS[i % 3]
            action = ("otp.verify", "otp.enroll", "security_card.verify")[i % 3]
            self.db.run(lambda tx, i=i, caller=caller, action=action: self.log.record(
                tx, action=action, target=f"DEV-{i % 5}", outcome=("accepted", "wrong_code")[i % 2],
                detail={"failures": i % 4, "n": i}, caller=caller))

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self.db.run(
            lambda tx: tx.all("SELECT id FROM audit_log ORDER BY id"), write=False)]

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> None:
        self.db.run(lambda tx: tx.execute(statement, params))

    def verify_cli(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        code = authd_main(["audit", "verify", "--store", self.url,
                           "--data-dir", str(self.cfg.data_dir), "--witness", str(self.witness),
                           *extra])
        return code, capsys.readouterr().out


def make_trail(tmp_path: Path, url: str) -> Trail:
    cfg = make_config(tmp_path, url)
    db = open_database(url)
    migrate(db)
    settings = AuditSettings()
    prepare_kek_token(cfg)  # as the daemon's key-encryption key does before the signer opens
    signer = open_signer(cfg, settings)
    witness = tmp_path / "audit-head.json"
    return Trail(cfg, url, db, signer, Sealer(db, signer, settings, witness=witness),
                 AuditLog(), witness)


@pytest.fixture
def trail(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))
    t = make_trail(tmp_path, store_url)
    yield t
    t.signer.close()
    t.db.close()


@pytest.fixture
def pg_trail(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Trail]:
    """PostgreSQL only: what happens there between concurrent transactions."""
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))
    t = make_trail(tmp_path, pg_url)
    yield t
    t.signer.close()
    t.db.close()


def sealed_trail(t: Trail, n: int = 20) -> list[int]:
    t.write(n)
    assert t.sealer.seal() == 1
    t.sealer.keep_witness(force=True)
    ids = t.ids()
    assert len(ids) == n
    return ids


def test_intact_trail_verifies(trail: Trail, capsys):
    sealed_trail(trail)
    trail.write(3, start=100)  # not sealed yet: counted, not judged
    code, out = trail.verify_cli(capsys)
    assert code == 0, out
    assert "OK: every sealed record is as it was sealed" in out
    assert "20 sealed record(s) checked" in out and "3 not sealed yet" in out
    report = verify(trail.db, trail.keys)
    assert report.ok and report.records == 20 and report.unsealed == 3


def test_the_store_builds_the_same_canonical_text_as_python(trail: Trail):
    trail.db.run(lambda tx: trail.log.record(
        tx, action="otp.verify", target="시리얼-1", outcome="accepted",
        detail={"note": "한글 ✓"}, caller=CALLERS[0], customer="고객-42"))
    row = trail.db.run(lambda tx: tx.one(
        f"SELECT a.at_us, k.institution, k.role, k.subject, k.action, a.target, k.outcome,"
        f" a.detail, a.customer, {CANONICAL} {FROM_RECORDS}"), write=False)
    assert row is not None
    assert row[9] == canonical_of(int(row[0]), row[1:8], row[8])


@pytest.mark.parametrize("change", ["edit_detail", "edit_outcome", "delete", "insert_before",
                                    "insert_backdated", "swap", "truncate"])
def test_tampering_is_reported_with_the_first_bad_record(trail: Trail, capsys, change: str):
    ids = sealed_trail(trail)
    if change == "edit_detail":
        trail.sql("UPDATE audit_log SET detail = ? WHERE id = ?", ('{"failures":0}', ids[6]))
        first, kind = ids[6], "altered"
    elif change == "edit_outcome":  # another who-did-what code: wrong_code made accepted
        row = trail.db.run(lambda tx: tx.one(
            "SELECT code FROM audit_kinds WHERE action = 'otp.verify' AND outcome = 'accepted'"))
        trail.sql("UPDATE audit_log SET kind = ? WHERE id = ?", (row[0], ids[3]))
        first, kind = ids[3], "altered"
    elif change == "delete":
        trail.sql("DELETE FROM audit_log WHERE id = ?", (ids[9],))
        first, kind = ids[9], "deleted"
    elif change == "insert_before":
        trail.sql("INSERT INTO audit_log (id, at_us, kind, target, detail) SELECT 0, at_us,"
                  " kind, target, detail FROM audit_log WHERE id = ?", (ids[5],))
        first, kind = 0, "inserted"
    elif change == "insert_backdated":
        trail.sql("INSERT INTO audit_log (at_us, kind, target, detail) SELECT at_us - ?,"
                  " kind, 'DEV-9', detail FROM audit_log WHERE id = ?",
                  (86_400_000_000, ids[5]))
        first, kind = max(trail.ids()), "inserted"
    elif change == "swap":
        a, b = ids[2], ids[7]
        trail.sql("UPDATE audit_log SET id = -1 WHERE id = ?", (a,))
        trail.sql("UPDATE audit_log SET id = ? WHERE id = ?", (a, b))
        trail.sql("UPDATE audit_log SET id = ? WHERE id = -1", (b,))
        first, kind = a, "reordered"
    else:  # truncate: the newest sealed records are gone
        trail.sql("DELETE FROM audit_log WHERE id >= ?", (ids[15],))
        first, kind = ids[15], "truncated"
    code, out = trail.verify_cli(capsys)
    assert code == 1, out
    assert f"first bad record {first}" in out
    assert f"  {kind} " in out
    report = verify(trail.db, trail.keys)
    assert not report.ok and report.first_bad_record == first and kind in report.counts
    if change == "swap":
        assert f"record {ids[2]} holds what block 1 sealed as record {ids[7]}" in out


def test_cutting_blocks_and_records_off_the_end_is_found_by_the_witness(trail: Trail, capsys):
    trail.write(10)
    trail.sealer.seal()
    trail.write(10, start=10)
    trail.sealer.seal()
    trail.sealer.keep_witness(force=True)
    ids = trail.ids()
    head = trail.db.run(read_head, write=False)
    assert head is not None and head.seq == 2
    # Whoever can write the store removes the last block and what it sealed.
    trail.sql("DELETE FROM audit_blocks WHERE seq = 2")
    trail.sql("DELETE FROM audit_log WHERE id >= ?", (ids[10],))
    code, out = trail.verify_cli(capsys)
    assert code == 1 and f"first bad record {ids[10]}" in out and "witness" in out, out
    assert "the end of the trail was removed" in out
    # Without the witness, a live store's head age gives it away.
    code, out = trail.verify_cli(capsys, "--no-witness", "--max-head-age", "0")
    assert code == 1 and "stale_head" in out


def test_edited_or_forged_blocks_are_reported(trail: Trail, capsys):
    sealed_trail(trail, 10)
    trail.write(5, start=10)
    trail.sealer.seal()
    # Edit a record and rewrite block 1's body to match: the signature no longer fits.
    from authd.audit.blocks import Block, Body, block_hash
    from authd.audit.records import SELECT_RECORDS, AuditRecord

    ids = trail.ids()
    trail.sql("UPDATE audit_log SET detail = '{}' WHERE id = ?", (ids[1],))
    row = trail.db.run(lambda tx: tx.one(
        "SELECT seq, first_id, last_id, record_count, at_min, at_max, at_hi, sealed_at, body,"
        " body_digest, prev_hash, hash, key_id, signature FROM audit_blocks WHERE seq = 1"))
    block = Block.from_row(row)
    body = Body.decode(block.body or b"")
    records = [AuditRecord.from_row(r) for r in trail.db.run(lambda tx: tx.all(
        f"{SELECT_RECORDS} WHERE a.id <= ? ORDER BY a.id", (block.last_id,)))]
    forged = Body(body.ids, body.classes, tuple(r.leaf() for r in records)).encode()
    import hashlib

    digest = hashlib.sha256(forged).digest()
    new_hash = block_hash(1, block.first_id, block.last_id, block.record_count, block.at_min,
                          block.at_max, block.at_hi, block.sealed_at, digest, block.prev_hash,
                          block.key_id)
    trail.sql("UPDATE audit_blocks SET body = ?, body_digest = ?, hash = ? WHERE seq = 1",
              (forged, digest, new_hash))
    code, out = trail.verify_cli(capsys)
    assert code == 1
    assert "block 1's signature is invalid" in out
    assert "block 2 does not link to block 1" in out


def test_a_gap_left_by_a_rolled_back_transaction_cannot_be_filled(pg_trail: Trail, capsys):
    """PostgreSQL's sequence leaves a gap where a transaction rolled back (SQLite reuses the
    id, so there is no gap to fill)."""
    trail = pg_trail
    trail.write(3)

    def rolled_back(tx):
        trail.log.record(tx, action="otp.verify", target="GONE", outcome="accepted")
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        trail.db.run(rolled_back)
    trail.write(3, start=3)
    trail.sealer.seal()
    ids = trail.ids()
    gap = next(i for i in range(ids[0], ids[-1]) if i not in ids)
    trail.sql("INSERT INTO audit_log (id, at_us, kind, target, detail) SELECT ?, at_us, kind,"
              " 'DEV-X', detail FROM audit_log WHERE id = ?", (gap, ids[0]))
    code, out = trail.verify_cli(capsys)
    assert code == 1 and f"first bad record {gap}" in out and "inserted" in out


def test_a_forged_prune_checkpoint_does_not_excuse_deletions(trail: Trail, capsys):
    ids = sealed_trail(trail, 6)
    trail.sql("DELETE FROM audit_log WHERE id = ?", (ids[2],))
    trail.sql("INSERT INTO audit_prunes (seq, pruned_at, through_block, compacted_through,"
              " cutoffs, removed, key_id, signature) VALUES (1, ?, 1, 0, ?, 1, ?, ?)",
              (time.time(), json.dumps({c: time.time() + 1e9 for c in ("approval", "default",
               "error_correction", "small_transaction")}), trail.signer.key_id, b"\x00" * 64))
    code, out = trail.verify_cli(capsys)
    assert code == 1 and "prune checkpoint 1 is not signed by a trusted key" in out
    assert f"first bad record {ids[2]}" in out


def test_verify_needs_a_trusted_key_and_a_chain(trail: Trail, capsys, tmp_path: Path):
    sealed_trail(trail, 3)
    other = tmp_path / "other.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out = trail.verify_cli(capsys, "--public-key", str(other))
    assert code == 1 and "not trusted" in out
    exported = tmp_path / "audit.pem"
    assert authd_main(["audit", "public-key", "--store", trail.url,
                       "--data-dir", str(trail.cfg.data_dir)]) == 0
    exported.write_text(capsys.readouterr().out)
    code, out = trail.verify_cli(capsys, "--public-key", str(exported))
    assert code == 0, out
    # A store without the chain's schema: a clear error, exit status 2.
    bare = f"sqlite:///{tmp_path / 'bare.db'}"
    assert authd_main(["audit", "verify", "--store", bare, "--data-dir", str(tmp_path)]) == 2
    assert "not an authd store" in capsys.readouterr().err


def test_sealers_on_two_nodes_and_concurrent_writers_seal_each_record_once(
        trail: Trail, store_url: str):
    """Writer threads commit (some roll back) while two nodes' sealers run side by side."""
    other_db = open_database(store_url)
    other = Sealer(other_db, trail.signer, AuditSettings())
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        db = open_database(store_url)
        try:
            for i in range(40):
                def work(tx, i=i):
                    trail.log.record(tx, action="otp.verify", target=f"W{k}-{i}",
                                     outcome="accepted", caller=CALLERS[k % 3])
                    if i % 7 == 0:
                        raise RuntimeError("roll back")
                try:
                    db.run(work)
                except RuntimeError:
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    def sealing(s: Sealer) -> None:
        while not stop.is_set():
            try:
                s.seal()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return
            time.sleep(0.01)

    sealers = [threading.Thread(target=sealing, args=(s,)) for s in (trail.sealer, other)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in sealers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in sealers:
        t.join()
    trail.sealer.seal()
    other_db.close()
    assert not errors, errors
    report = verify(trail.db, trail.keys)
    committed = 4 * (40 - len(range(0, 40, 7)))
    assert report.ok, report.findings
    assert report.records == committed and report.unsealed == 0


def test_postgresql_sealer_waits_for_an_open_transaction(pg_trail: Trail):
    """An id handed out to a transaction still open is not sealed past (on SQLite writers are
    serialized, so every committed id is settled)."""
    trail = pg_trail
    trail.sealer.settle_timeout = 0.3
    slow = open_database(trail.url)
    try:
        with slow.transaction() as tx:
            trail.log.record(tx, action="otp.verify", target="SLOW", outcome="accepted")
            trail.write(2)  # later ids, committed first
            assert trail.sealer.seal() == 0  # the open transaction holds a smaller id
            assert trail.sealer.stats.not_settled == 1
        assert trail.sealer.seal() == 1
    finally:
        slow.close()
    report = verify(trail.db, trail.keys)
    assert report.ok and report.records == 3
