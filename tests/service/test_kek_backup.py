"""Backups taken before a key-encryption-key rotation: the rotated-out key is kept on the
token as 'retired' for ``[kek] keep_rotated_days``, a restore re-seals the backup under the
store's current key, and once ``authd kek expire`` has destroyed the old key such a backup is
refused with a clear error and the store is left as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from authd.kek.keys import read_keys
from authd.secrets import open_secret_box
from authd.storage import open_database
from authd.v1 import otp_pb2 as O
from devices.otp.codes import hotp
from tests.conftest import TestServer, make_config
from tests.nodes import serve_env
from tests.service.test_kek_rotation import (
    SEED,
    Devices,
    _env,
    _fill,
    _label,
    _on_token,
    _plaintexts,
    _settings,
    _under,
)

KEEP = {"AUTHD_KEK__KEEP_ROTATED_DAYS": "35"}


def _authd(label: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "authd.cli", *args],
                          env=serve_env({**_env(label), **KEEP}), capture_output=True, text=True,
                          timeout=300)


def _store_args(srv: Any) -> list[str]:
    return ["--store", srv.config.store_url, "--data-dir", str(srv.config.data_dir)]


def _kept(label: str) -> dict[str, Any]:
    settings = _settings(label)
    settings["kek"] = {**settings["kek"], "keep_rotated_days": 35}
    return settings


def _backed_up_then_rotated(server: Any, tmp_path: Path, prefix: str) -> tuple[
        Any, str, Devices, dict[str, int], dict[tuple[str, object], bytes], Path]:
    """A serving store with sealed values of every kind, its backup, verifications after the
    backup, then a rotation from key 1 to key 2."""
    label = _label()
    url = f"sqlite:///{tmp_path / 'authd.db'}"
    srv = server(store_url=url, **_kept(label))
    devices = Devices(srv.channel("bank-a", "backend"), prefix)
    _fill(srv, devices, 12)
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 12})
    sealed = _plaintexts(srv.app.db, srv.app.secrets)
    out = tmp_path / "before-rotation.backup"
    taken = _authd(label, "backup", str(out), *_store_args(srv))
    assert taken.returncode == 0, taken.stderr
    at_backup = dict(devices.next)
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 12})  # after the backup

    rotated = _authd(label, "kek", "rotate", *_store_args(srv))
    assert rotated.returncode == 0, rotated.stderr
    assert "key 1 retired: kept on the token" in rotated.stdout
    keys = {k.id: k.state for k in srv.app.db.run(read_keys, write=False)}
    assert keys == {1: "retired", 2: "active"}
    assert _under(srv.app.db) == {2} and _on_token(label)
    # The serving daemon seals under key 2.
    assert srv.app.secrets.current_key == 2
    return srv, label, devices, at_backup, sealed, out


def test_a_backup_taken_before_a_rotation_restores_under_the_current_key(server, tmp_path):
    srv, label, _devices, at_backup, sealed, out = _backed_up_then_rotated(
        server, tmp_path, "OTP-BKR")
    status = _authd(label, "kek", "status", *_store_args(srv))
    assert status.returncode == 0, status.stderr
    assert "key 1: retired" in status.stdout and "kept until" in status.stdout
    srv.stop()

    restored = _authd(label, "restore", str(out), "--replace", *_store_args(srv))
    assert restored.returncode == 0, restored.stderr
    assert "re-sealed under the store's current key-encryption key 2" in restored.stdout

    db = open_database(srv.config.store_url)
    try:
        assert _under(db) == {2}  # nothing of the restored store needs the retired key
        keys = {k.id: k.state for k in db.run(read_keys, write=False)}
        assert keys == {1: "retired", 2: "active"}
        assert db.run(lambda tx: tx.one(
            "SELECT state FROM kek_rotations WHERE id = 1"), write=False) == ("done",)
        box = open_secret_box(srv.config, db)  # what a daemon started now holds: key 2
        try:
            assert box.key_ids() == [2]
            assert _plaintexts(db, box) == sealed
        finally:
            box.close()
        detail = db.run(lambda tx: tx.one(
            "SELECT detail FROM audit_records WHERE action = 'audit.restore'"), write=False)
        assert detail is not None and '"resealed"' in str(detail[0])
    finally:
        db.close()

    # The daemon started again on its own data directory and the restored store.
    again = TestServer(make_config(srv.config.data_dir, srv.config.store_url, **_kept(label)))
    try:
        stub = Devices(again.channel("bank-a", "backend"), "unused").stub
        # The restored set is the store as of the backup: each device's next code is the one
        # after the backup's counter, and the restored daemon accepts it.
        for serial, counter in sorted(at_backup.items()):
            answer = stub.Verify(O.VerifyRequest(serial=serial, code=hotp(SEED, counter)),
                                 timeout=60)
            assert answer.outcome == O.VERIFY_OUTCOME_ACCEPTED, serial
        fresh = Devices(again.channel("bank-a", "backend"), "OTP-BKR-NEW")
        fresh.enroll(again.channel("bank-a", "branch"), 1)
        assert _under(again.app.db) == {2}
    finally:
        again.stop()


def test_a_backup_whose_key_was_destroyed_is_refused_and_changes_nothing(server, tmp_path):
    srv, label, _devices, _at_backup, _sealed, out = _backed_up_then_rotated(
        server, tmp_path, "OTP-BKX")
    not_due = _authd(label, "kek", "expire", *_store_args(srv))
    assert not_due.returncode == 0, not_due.stderr
    assert "no retired key is due" in not_due.stdout and _on_token(label)
    wrong = _authd(label, "kek", "expire", "--key", "2", *_store_args(srv))
    assert wrong.returncode == 2 and "key 2 is active" in wrong.stderr, wrong.stderr
    gone = _authd(label, "kek", "expire", "--key", "1", *_store_args(srv))
    assert gone.returncode == 0, gone.stderr
    assert "key 1 destroyed on the token" in gone.stdout and not _on_token(label)
    keys = {k.id: k.state for k in srv.app.db.run(read_keys, write=False)}
    assert keys == {1: "destroyed", 2: "active"}
    srv.stop()

    store = Path(srv.config.store_url[len("sqlite:///"):])
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    refused = _authd(label, "restore", str(out), "--replace", *_store_args(srv))
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
    assert "sealed under key-encryption key 1, which is destroyed" in refused.stderr
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


def test_a_backup_of_another_store_is_restored_with_its_own_keys(server, tmp_path):
    label_a, label_b = _label(), _label()
    a = server(store_url=f"sqlite:///{tmp_path / 'a.db'}", **_kept(label_a))
    devices = Devices(a.channel("bank-a", "backend"), "OTP-BKA")
    devices.enroll(a.channel("bank-a", "branch"), 3)
    out = tmp_path / "a.backup"
    assert _authd(label_a, "backup", str(out), *_store_args(a)).returncode == 0
    b = server(store_url=f"sqlite:///{tmp_path / 'b.db'}", **_kept(label_b))
    Devices(b.channel("bank-a", "backend"), "OTP-BKB").enroll(b.channel("bank-a", "branch"), 1)
    a.stop()
    b.stop()

    restored = _authd(label_b, "restore", str(out), "--replace", *_store_args(b))
    assert restored.returncode == 0, restored.stderr
    assert "re-sealed" not in restored.stdout
    db = open_database(b.config.store_url)
    try:
        assert [(k.id, k.key_label, k.state) for k in db.run(read_keys, write=False)] == [
            (1, label_a, "active")]
    finally:
        db.close()
    again = TestServer(make_config(b.config.data_dir, b.config.store_url, **_kept(label_b)))
    try:
        stub = Devices(again.channel("bank-a", "backend"), "unused").stub
        for serial in devices.next:
            answer = stub.Verify(O.VerifyRequest(serial=serial, code=hotp(SEED, 0)), timeout=60)
            assert answer.outcome == O.VERIFY_OUTCOME_ACCEPTED, serial
    finally:
        again.stop()
