"""Retention per record class, enforced by ``authd prune-audit`` from what the chain sealed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from authd.audit import AuditLog
from authd.audit.chain import Sealer
from authd.audit.settings import YEAR, AuditSettings
from authd.audit.signing import KeyRing, open_signer
from authd.audit.verify import verify
from authd.cli import main as authd_main
from authd.context import Caller, Role
from authd.storage import Database, migrate, open_database
from tests.conftest import KEK_PIN_FILE, make_config

TELLER = Caller("bank-a", Role.BRANCH, "teller-1")
BACKEND = Caller("bank-a", Role.BACKEND, "ib-1")
# (action, detail, class under the default mapping)
OLD_RECORDS = [
    ("otp.verify", {"failures": 0}, "approval"),
    ("otp.verify", {"failures": 10, "locked_now": True}, "default"),
    ("otp.enroll", {"kind": "totp"}, "default"),
    ("otp.resync", {"drift": 1}, "error_correction"),
    ("security_card.verify", {"amount_krw": 5_000}, "small_transaction"),
    ("security_card.verify", {"amount_krw": 50_000}, "approval"),
    ("otp.report_lost", {}, "default"),
]
ONE_YEAR_CLASSES = {"approval", "error_correction", "small_transaction"}


class Store:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.cfg = make_config(tmp_path, url)
        self.db: Database = open_database(url)
        migrate(self.db)
        self.signer = open_signer(self.cfg, AuditSettings())
        self.keys = KeyRing([self.signer.public_key], "test key")

    def write_at(self, when: float, records: list[tuple[str, dict[str, object], str]]) -> None:
        log = AuditLog(clock=lambda: when)
        for i, (action, detail, _) in enumerate(records):
            caller = BACKEND if action.endswith("verify") else TELLER
            self.db.run(lambda tx, action=action, detail=detail, i=i, caller=caller: log.record(
                tx, action=action, target=f"SN-{i}", outcome="ok", detail=detail,
                caller=caller))
        Sealer(self.db, self.signer, AuditSettings()).seal()

    def count(self) -> int:
        row = self.db.run(lambda tx: tx.one("SELECT COUNT(*) FROM audit_log"), write=False)
        return int(row[0])

    def actions(self) -> list[str]:
        rows = self.db.run(lambda tx: tx.all(
            "SELECT k.action, a.detail FROM audit_log a JOIN audit_kinds k ON k.code = a.kind"
            " ORDER BY a.id"), write=False)
        return [f"{r[0]} {r[1]}" for r in rows]

    def prune(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
        code = authd_main(["prune-audit", "--store", self.url, "--data-dir",
                           str(self.tmp_path), *extra])
        out = capsys.readouterr()
        return code, out.out + out.err


@pytest.fixture
def store(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))
    s = Store(tmp_path, store_url)
    yield s
    s.signer.close()
    s.db.close()


def test_one_year_classes_go_after_a_year_the_rest_stays_five(store: Store, capsys):
    store.write_at(time.time() - 2 * YEAR, OLD_RECORDS)
    store.write_at(time.time() - 60, OLD_RECORDS)  # this year's: all stay
    before = store.count()
    code, out = store.prune(capsys, "--dry-run")
    assert code == 0 and "would remove 4 audit record(s)" in out
    assert store.count() == before
    code, out = store.prune(capsys)
    assert code == 0, out
    assert "removed 4 audit record(s)" in out and "approval 1 y" in out and "default 5 y" in out
    kept = store.actions()
    assert len(kept) == before - 4 + 1  # + the audit.prune record itself
    assert sum(1 for k in kept if "locked_now" in k) == 2  # a lock is a record of the medium
    assert sum(1 for k in kept if "amount_krw" in k) == 2  # this year's only
    # The chain still verifies: the gone records are covered by the signed checkpoint.
    Sealer(store.db, store.signer, AuditSettings()).seal()
    report = verify(store.db, store.keys)
    assert report.ok, report.findings
    assert report.pruned == 4
    # Pruning again removes nothing more.
    code, out = store.prune(capsys)
    assert code == 0 and "removed 0 audit record(s)" in out


def test_retention_comes_from_the_configuration(store: Store, capsys, tmp_path: Path):
    store.write_at(time.time() - 2 * YEAR, OLD_RECORDS)
    conf = tmp_path / "authd.toml"
    conf.write_text('[audit.retention_years]\napproval = 3\n')
    code, out = store.prune(capsys, "--config", str(conf))
    assert code == 0, out
    # approvals now 3 years: only error correction and the small transaction are past theirs.
    assert "removed 2 audit record(s)" in out and "approval 3 y" in out
    conf.write_text('[audit.retention_years]\napproval = "long"\n')
    code, out = store.prune(capsys, "--config", str(conf))
    assert code == 2 and "[audit] retention_years approval must be a number" in out


def test_a_retention_edited_in_the_row_is_not_trusted(store: Store, capsys):
    """A record made to look old (its time edited in place) is not pruned: the chain says
    when it was sealed, and the edit itself stops pruning."""
    store.write_at(time.time() - 60, OLD_RECORDS)
    store.db.run(lambda tx: tx.execute("UPDATE audit_log SET at_us = at_us - ?",
                                       (int(10 * YEAR * 1e6),)))
    before = store.count()
    code, out = store.prune(capsys)
    assert code == 0 and "removed 0 audit record(s)" in out  # sealed this year: nothing due
    # A record of a due block edited: pruning refuses and changes nothing.
    store.write_at(time.time() - 2 * YEAR, OLD_RECORDS)
    row = store.db.run(lambda tx: tx.one("SELECT MAX(id) FROM audit_log"))
    store.db.run(lambda tx: tx.execute("UPDATE audit_log SET target = 'X' WHERE id = ?",
                                       (row[0],)))
    total = store.count()
    code, out = store.prune(capsys)
    assert code == 1, out
    assert "tampered with; nothing was pruned" in out and f"record {row[0]}" in out
    assert store.count() == total and total == before + len(OLD_RECORDS)


def test_records_past_every_retention_leave_only_block_headers(store: Store, capsys):
    store.write_at(time.time() - 6 * YEAR, OLD_RECORDS)
    store.write_at(time.time() - 60, OLD_RECORDS[:2])
    code, out = store.prune(capsys)
    assert code == 0 and f"removed {len(OLD_RECORDS)} audit record(s)" in out
    bodies = store.db.run(lambda tx: tx.all(
        "SELECT seq, body IS NULL FROM audit_blocks ORDER BY seq"), write=False)
    assert bodies[0] == (1, 1) and not bodies[1][1]
    report = verify(store.db, store.keys)
    assert report.ok, report.findings
    # A record put back where the compacted block was is found.
    store.db.run(lambda tx: tx.execute(
        "INSERT INTO audit_log (id, at_us, kind, target, detail) SELECT 1, at_us, kind,"
        " target, detail FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)"))
    report = verify(store.db, store.keys)
    assert not report.ok and report.first_bad_record == 1 and "inserted" in report.counts
