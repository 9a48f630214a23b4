"""Storage, migrations, audit and sealed secrets on both stores, with the SoftHSM2 KEK."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from authd.audit import AuditLog
from authd.secrets import open_secret_box
from authd.storage import migrate, open_database
from devices.errors import BadRequest, WrongState
from tests.conftest import make_config


def test_migrations_apply_once(store_url: str):
    db = open_database(store_url)
    try:
        first = migrate(db)
        assert 1 in first
        assert migrate(db) == []
        tables = db.run(lambda tx: tx.one("SELECT COUNT(*) FROM schema_migrations"))
        assert tables is not None and tables[0] == len(first)
    finally:
        db.close()


def test_rollback_leaves_nothing(store_url: str):
    db = open_database(store_url)
    migrate(db)

    def half(tx):
        AuditLog().record(tx, action="x", target="t1", outcome="ok")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        db.run(half)
    assert db.run(lambda tx: AuditLog().for_target(tx, "t1")) == []
    db.close()


def test_concurrent_increments_are_exact(store_url: str):
    db = open_database(store_url, pool_size=8)
    migrate(db)
    db.run(lambda tx: tx.execute("INSERT INTO store_meta (name, value) VALUES ('n', ?)",
                                 (b"0",)))

    def bump(tx):
        row = tx.one("SELECT value FROM store_meta WHERE name = 'n'" + tx.for_update)
        tx.execute("UPDATE store_meta SET value = ? WHERE name = 'n'",
                   (str(int(bytes(row[0])) + 1).encode(),))

    def worker():
        for _ in range(25):
            db.run(bump)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bytes(db.run(lambda tx: tx.one("SELECT value FROM store_meta WHERE name='n'"))[0]) \
        == b"200"
    db.close()


def test_audit_refuses_secret_keys(store_url: str):
    db = open_database(store_url)
    migrate(db)
    with pytest.raises(ValueError, match="secrets"):
        db.run(lambda tx: AuditLog().record(tx, action="a", target="t", outcome="o",
                                            detail={"PIN": "1234"}))
    db.close()


def test_unknown_store_scheme():
    with pytest.raises(BadRequest, match="unsupported store"):
        open_database("mysql://x")


@pytest.mark.parametrize("mode", ["data-key", "token"])
def test_sealed_secrets_roundtrip_and_bind_to_record(tmp_path: Path, store_url: str, mode: str):
    cfg = make_config(tmp_path, store_url, kek={"mode": mode})
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    blob = box.seal(b"12345678901234567890", b"otp:SN1")
    assert b"12345678901234567890" not in blob
    assert box.open(blob, b"otp:SN1") == b"12345678901234567890"
    with pytest.raises(WrongState):
        box.open(blob, b"otp:SN2")
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(WrongState):
        box.open(bytes(tampered), b"otp:SN1")
    assert len(box.random(20)) == 20 and box.random(20) != box.random(20)
    box.close()
    # A restarted node opens what the previous one sealed.
    again = open_secret_box(cfg, db)
    assert again.open(blob, b"otp:SN1") == b"12345678901234567890"
    again.close()
    db.close()


def test_file_kek(tmp_path: Path):
    cfg = make_config(tmp_path, None, kek={"kind": "file"})
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    assert box.open(box.seal(b"s", b"a"), b"a") == b"s"
    assert (tmp_path / "kek.key").stat().st_mode & 0o077 == 0
    box.close()
    (tmp_path / "kek.key").write_bytes(b"\x00" * 32)
    with pytest.raises(WrongState, match=r"another key-encryption key|authentication"):
        open_secret_box(cfg, db)
    db.close()
