"""``authd backup`` / ``authd restore``: SQLite backup files, PostgreSQL pg_dump archives."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from pathlib import Path

import pytest

from authd.cli import main as authd_main
from authd.storage import open_database
from authd.v1 import otp_pb2, otp_pb2_grpc
from simulators.otp.generator import DisplayToken
from tests.conftest import KEK_PIN_FILE, TestServer, make_config
from tests.pgcluster import _pg_bin


@pytest.fixture(autouse=True)
def kek_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHD_KEK__PIN_FILE", str(KEK_PIN_FILE))


def enroll_many(srv, n: int) -> dict[str, DisplayToken]:
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))
    tokens = {}
    for i in range(n):
        serial = f"OTP-BK-{i:04d}"
        resp = teller.Enroll(otp_pb2.EnrollRequest(
            serial=serial, operator_id="op", customer_id=f"C-{i}",
            parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)))
        tokens[serial] = DisplayToken.from_uri(resp.provisioning_uri, serial)
    return tokens


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_taken_under_load_holds_every_acknowledged_change(server, tmp_path: Path,
                                                                    capsys):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    srv = server(store_url=url, audit={"seal_interval": 0.1})
    tokens = enroll_many(srv, 160)
    serials = sorted(tokens)
    acked: dict[str, float] = {}
    lock = threading.Lock()
    started = threading.Event()

    def load(part: list[str]) -> None:
        backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend", "ib"))
        for i, serial in enumerate(part):
            if i == 10:
                started.set()
            r = backend.Verify(otp_pb2.VerifyRequest(serial=serial, code=tokens[serial].show()),
                               timeout=30)
            assert r.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED
            with lock:
                acked[serial] = time.monotonic()

    threads = [threading.Thread(target=load, args=(serials[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    assert started.wait(30)
    out = tmp_path / "authd.backup"
    began = time.monotonic()
    code = authd_main(["backup", str(out), "--store", url, "--data-dir", str(tmp_path)])
    for t in threads:
        t.join()
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "backup written to" in printed and "audit chain of the store verified" in printed
    before = [s for s, at in acked.items() if at < began]
    assert 10 <= len(before) < len(serials)  # taken while verifications went on

    restored_url = f"sqlite:///{tmp_path / 'restored' / 'authd.db'}"
    code = authd_main(["restore", str(out), "--store", restored_url,
                       "--data-dir", str(tmp_path / "restored")])
    assert code == 0, capsys.readouterr()
    db = open_database(restored_url)
    try:
        for serial in before:
            device = db.run(lambda tx, s=serial: tx.one(
                "SELECT last_counter, failures FROM otp_devices WHERE serial = ?", (s,)))
            assert device is not None and device[0] >= 0 and device[1] == 0, serial
            audited = db.run(lambda tx, s=serial: tx.one(
                "SELECT COUNT(*) FROM audit_log a JOIN audit_kinds k ON k.code = a.kind"
                " WHERE a.target = ? AND k.action = 'otp.verify' AND k.outcome = 'accepted'",
                (s,)))
            assert audited == (1,), serial
        restore_record = db.run(lambda tx: tx.one(
            "SELECT COUNT(*) FROM audit_log a JOIN audit_kinds k ON k.code = a.kind"
            " WHERE k.action = 'audit.restore'"))
        assert restore_record == (1,)
    finally:
        db.close()
    code = authd_main(["audit", "verify", "--store", restored_url,
                       "--data-dir", str(tmp_path / "restored")])
    assert code == 0, capsys.readouterr().out


@pytest.fixture
def backup_file(server, tmp_path: Path, capsys) -> tuple[Path, Path, str]:
    """A store with some history, its backup, and a second store a restore would replace."""
    url = f"sqlite:///{tmp_path / 'src.db'}"
    srv = server(store_url=url)
    enroll_many(srv, 3)
    out = tmp_path / "good.backup"
    assert authd_main(["backup", str(out), "--store", url, "--data-dir", str(tmp_path)]) == 0
    target_dir = tmp_path / "target"
    target_url = f"sqlite:///{target_dir / 'authd.db'}"
    assert authd_main(["migrate", "--store", target_url]) == 0
    capsys.readouterr()
    return out, target_dir / "authd.db", target_url


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated", "not_a_backup",
                                    "bad_description", "tampered_trail"])
def test_a_corrupt_backup_is_refused_and_changes_nothing(backup_file, tmp_path: Path, capsys,
                                                         damage: str):
    good, target, target_url = backup_file
    bad = tmp_path / f"{damage}.backup"
    raw = bytearray(good.read_bytes())
    header = raw.index(b"\n", len(b"authd-backup 1\n")) + 1
    expected = ""
    if damage == "flipped_byte":
        raw[header + len(raw[header:]) // 2] ^= 0x40
        bad.write_bytes(bytes(raw))
        expected = "is damaged: its checksum does not match"
    elif damage == "truncated":
        bad.write_bytes(bytes(raw[:-4096]))
        expected = "is truncated"
    elif damage == "not_a_backup":
        bad.write_bytes(b"SQLite format 3\x00" + bytes(1000))
        expected = "is not an authd backup"
    elif damage == "bad_description":
        bad.write_bytes(bytes(raw[:20]) + b"{broken" + bytes(raw[header - 1:]))
        expected = "description is damaged"
    else:
        # A faithful backup of a store whose trail was edited: backed up, reported, refused.
        src_url = f"sqlite:///{tmp_path / 'src.db'}"
        assert authd_main(["audit", "seal", "--store", src_url,
                           "--data-dir", str(tmp_path)]) == 0
        db = open_database(src_url)
        db.run(lambda tx: tx.execute("UPDATE audit_log SET target = 'X' WHERE id = 1"))
        db.close()
        capsys.readouterr()
        assert authd_main(["backup", str(bad), "--store", src_url,
                           "--data-dir", str(tmp_path)]) == 1
        assert "first bad record 1" in capsys.readouterr().err
        expected = "tampered with (first bad record 1); nothing restored"
    before = sha(target)
    code = authd_main(["restore", str(bad), "--store", target_url, "--replace",
                       "--data-dir", str(target.parent)])
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert sha(target) == before
    assert not list(target.parent.glob(".*restoring*"))
    # The good one restores.
    assert authd_main(["restore", str(good), "--store", target_url, "--replace",
                       "--data-dir", str(target.parent)]) == 0


def test_restore_asks_before_replacing_a_store(backup_file, capsys):
    good, target, target_url = backup_file
    before = sha(target)
    assert authd_main(["restore", str(good), "--store", target_url,
                       "--data-dir", str(target.parent)]) == 2
    assert "restore with --replace" in capsys.readouterr().err and sha(target) == before
    assert authd_main(["restore", str(good), "--check", "--store", target_url,
                       "--data-dir", str(target.parent)]) == 0
    assert "a sound backup" in capsys.readouterr().out and sha(target) == before
    assert authd_main(["backup", str(good), "--store", target_url,
                       "--data-dir", str(target.parent)]) == 2
    assert "never overwrites" in capsys.readouterr().err


def _pg_databases(pg_cluster) -> set[str]:
    import psycopg

    with psycopg.connect(pg_cluster.url("postgres"), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def test_postgresql_is_backed_up_by_authd_backup_with_pg_dump(server, pg_url: str,
                                                              tmp_path: Path, capsys, pg_cluster):
    """authd backup on PostgreSQL writes a pg_dump archive, checked as a restore would check it
    (its audit chain verified in a staging database, then dropped); the documented pg_restore
    by hand gives a trail that verifies and goes on."""
    server(store_url=pg_url).stop()  # the store, its key on the token, also when run alone
    from authd.audit import AuditLog

    db = open_database(pg_url)
    log = AuditLog()
    for i in range(5):
        db.run(lambda tx, i=i: log.record(tx, action="otp.verify", target=f"PG-{i}",
                                          outcome="accepted"))
    db.close()
    assert authd_main(["audit", "seal", "--store", pg_url, "--data-dir", str(tmp_path)]) == 0
    dump = tmp_path / "authd.dump"
    databases = _pg_databases(pg_cluster)
    capsys.readouterr()
    assert authd_main(["backup", str(dump), "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a pg_dump archive of database" in out and "audit records up to 5" in out, out
    assert "audit chain of the backup verified: 5 sealed records" in out, out
    assert dump.read_bytes().startswith(b"PGDMP") and _pg_databases(pg_cluster) == databases
    assert not list(tmp_path.glob(".authd.dump*"))
    before = sha(dump)
    assert authd_main(["backup", str(dump), "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 2
    assert "never overwrites" in capsys.readouterr().err and sha(dump) == before
    pg_restore = _pg_bin("pg_restore")
    assert pg_restore
    copy = pg_cluster.create_database()
    subprocess.run([pg_restore, "--no-owner", "--dbname", pg_cluster.url(copy), str(dump)],
                   check=True)
    capsys.readouterr()
    code = authd_main(["audit", "verify", "--store", pg_cluster.url(copy),
                       "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "5 sealed record(s) checked" in out, out
    # The copy goes on: its identity sequence continues after the restored ids.
    db = open_database(pg_cluster.url(copy))
    db.run(lambda tx: log.record(tx, action="otp.verify", target="PG-NEW", outcome="accepted"))
    ids = db.run(lambda tx: tx.all("SELECT id FROM audit_log ORDER BY id"))
    db.close()
    assert len(ids) == 6 and ids[-1][0] > ids[-2][0]
    pg_cluster.admin(f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)")


def test_a_postgresql_dump_of_a_tampered_trail_is_written_faithfully_and_not_restored(
        server, pg_url: str, tmp_path: Path, capsys, pg_cluster):
    """As on SQLite: the backup of a tampered store is written (exit 1, with the findings);
    restoring it is refused with the store and the server's databases unchanged."""
    server(store_url=pg_url).stop()  # the store, its key on the token, also when run alone
    from authd.audit import AuditLog

    db = open_database(pg_url)
    log = AuditLog()
    for i in range(3):
        db.run(lambda tx, i=i: log.record(tx, action="otp.verify", target=f"PG-{i}",
                                          outcome="accepted"))
    db.close()
    assert authd_main(["audit", "seal", "--store", pg_url, "--data-dir", str(tmp_path)]) == 0
    db = open_database(pg_url)
    db.run(lambda tx: tx.execute("UPDATE audit_log SET target = 'X' WHERE id = 1"))
    db.close()
    dump = tmp_path / "tampered.dump"
    capsys.readouterr()
    assert authd_main(["backup", str(dump), "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 1
    assert "tampered with" in capsys.readouterr().err and dump.exists()
    assert authd_main(["restore", str(dump), "--check", "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 1
    databases = _pg_databases(pg_cluster)
    db = open_database(pg_url)
    db.run(lambda tx: tx.execute("UPDATE audit_log SET target = 'PG-0' WHERE id = 1"))
    rows = db.run(lambda tx: tx.all("SELECT id, target FROM audit_log ORDER BY id"))
    db.close()
    capsys.readouterr()
    assert authd_main(["restore", str(dump), "--replace", "--store", pg_url,
                       "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tampered with (first bad record 1); nothing restored" in err, err
    db = open_database(pg_url)
    assert db.run(lambda tx: tx.all("SELECT id, target FROM audit_log ORDER BY id")) == rows
    db.close()
    assert _pg_databases(pg_cluster) == databases


def test_restore_refuses_a_store_a_running_daemon_has_open(tmp_path: Path, capsys):
    """Restoring under a running daemon would leave it serving from state the restore replaced
    underneath it: refused, nothing changed, the daemon goes on; stopped, the restore works."""
    srv = TestServer(make_config(tmp_path / "node0",
                                 f"sqlite:///{tmp_path / 'node0' / 'authd.db'}"))
    url, data = srv.config.store_url, str(tmp_path / "node0")
    enroll_many(srv, 2)
    out = tmp_path / "before.backup"
    assert authd_main(["backup", str(out), "--store", url, "--data-dir", data]) == 0
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch", "teller"))
    request = otp_pb2.EnrollRequest(serial="OTP-AFTER-1", operator_id="op", customer_id="C-9",
                                    parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP))
    teller.Enroll(request)
    capsys.readouterr()
    code = authd_main(["restore", str(out), "--store", url, "--replace", "--data-dir", data])
    err = capsys.readouterr().err
    assert code == 2 and "in use (is authd running?)" in err and "nothing restored" in err, err
    try:
        status = teller.GetStatus(otp_pb2.GetStatusRequest(serial="OTP-AFTER-1"))
        assert status.serial == "OTP-AFTER-1"  # the change after the backup is still there
    finally:
        srv.stop()
    assert authd_main(["restore", str(out), "--store", url, "--replace", "--data-dir", data]) == 0
    db = open_database(url)
    try:
        serials = db.run(lambda tx: [r[0] for r in tx.all("SELECT serial FROM otp_devices")],
                         write=False)
    finally:
        db.close()
    assert sorted(serials) == ["OTP-BK-0000", "OTP-BK-0001"]
