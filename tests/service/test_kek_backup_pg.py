"""``authd restore --replace`` of a pg_dump archive taken before a key-encryption-key rotation:
staged in a database beside the store's, re-sealed under the store's current key there, and
only then put in the store's place; refused with the store unchanged when the dump's key was
destroyed, or while a daemon has the store open."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from authd.kek.keys import read_keys
from authd.secrets import open_secret_box
from authd.storage import open_database
from authd.v1 import otp_pb2 as O
from devices.otp.codes import hotp
from tests.conftest import TestServer, make_config
from tests.pgcluster import PgCluster, _pg_bin
from tests.service.test_kek_backup import _authd, _kept, _store_args
from tests.service.test_kek_rotation import SEED, Devices, _fill, _label, _plaintexts, _under


def _dump(url: str, out: Path) -> None:
    pg_dump = _pg_bin("pg_dump")
    assert pg_dump
    subprocess.run([pg_dump, "--format=custom", "--file", str(out), url], check=True)


def _plain(url: str) -> str:
    """The whole database as SQL text: equal before and after means nothing changed."""
    pg_dump = _pg_bin("pg_dump")
    assert pg_dump
    text = subprocess.run([pg_dump, "--format=plain", "--no-owner", url], check=True,
                          capture_output=True, text=True).stdout
    # \restrict and \unrestrict carry a random key per dump
    return "\n".join(line for line in text.splitlines() if "restrict " not in line[:12])


def _databases(cluster: PgCluster) -> set[str]:
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database")}


def _dumped_then_rotated(server: Any, pg_url: str, tmp_path: Path, prefix: str) -> tuple[
        Any, str, dict[str, int], dict[tuple[str, object], bytes], Path]:
    label = _label()
    srv = server(store_url=pg_url, **_kept(label))
    devices = Devices(srv.channel("bank-a", "backend"), prefix)
    _fill(srv, devices, 8)
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 8})
    sealed = _plaintexts(srv.app.db, srv.app.secrets)
    out = tmp_path / "before-rotation.dump"
    _dump(pg_url, out)
    at_dump = dict(devices.next)
    assert devices.verify_all() == Counter({"VERIFY_OUTCOME_ACCEPTED": 8})  # after the dump
    rotated = _authd(label, "kek", "rotate", *_store_args(srv))
    assert rotated.returncode == 0, rotated.stderr
    assert _under(srv.app.db) == {2}
    return srv, label, at_dump, sealed, out


def test_a_dump_taken_before_a_rotation_restores_under_the_current_key(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path) -> None:
    srv, label, at_dump, sealed, out = _dumped_then_rotated(server, pg_url, tmp_path, "OTP-PGR")
    checked = _authd(label, "restore", str(out), "--check", *_store_args(srv))
    assert checked.returncode == 0, checked.stderr
    assert "a sound dump of an authd store" in checked.stdout
    # Refused while the daemon has the store open: nothing changed, no database left behind.
    before_dbs = _databases(pg_cluster)
    busy = _authd(label, "restore", str(out), "--replace", *_store_args(srv))
    assert busy.returncode == 2 and "is in use" in busy.stderr, busy.stderr
    assert _databases(pg_cluster) == before_dbs
    srv.stop()
    kept = _authd(label, "restore", str(out), *_store_args(srv))
    assert kept.returncode == 2 and "--replace" in kept.stderr, kept.stderr

    restored = _authd(label, "restore", str(out), "--replace", *_store_args(srv))
    assert restored.returncode == 0, restored.stderr
    assert "re-sealed under the store's current key-encryption key 2" in restored.stdout
    aside = (_databases(pg_cluster) - before_dbs).pop()
    assert "_before_restore_" in aside and f"DROP DATABASE {aside}" in restored.stdout

    db = open_database(pg_url)
    try:
        assert _under(db) == {2}
        assert {k.id: k.state for k in db.run(read_keys, write=False)} == {
            1: "retired", 2: "active"}
        box = open_secret_box(srv.config, db)
        try:
            assert box.key_ids() == [2]
            assert _plaintexts(db, box) == sealed
        finally:
            box.close()
        detail = db.run(lambda tx: tx.one(
            "SELECT detail FROM audit_records WHERE action = 'audit.restore'"), write=False)
        assert detail is not None and '"resealed"' in str(detail[0])
        assert aside in str(detail[0])
    finally:
        db.close()
    # The store as it was (after the rotation, with the verifications after the dump) is kept.
    old = open_database(pg_cluster.url(aside))
    try:
        assert _under(old) == {2}
    finally:
        old.close()

    again = TestServer(make_config(srv.config.data_dir, pg_url, **_kept(label)))
    try:
        stub = Devices(again.channel("bank-a", "backend"), "unused").stub
        for serial, counter in sorted(at_dump.items()):
            answer = stub.Verify(O.VerifyRequest(serial=serial, code=hotp(SEED, counter)),
                                 timeout=60)
            assert answer.outcome == O.VERIFY_OUTCOME_ACCEPTED, serial
    finally:
        again.stop()
    pg_cluster.admin(f"DROP DATABASE IF EXISTS {aside} WITH (FORCE)")


def test_a_dump_whose_key_was_destroyed_is_refused_and_changes_nothing(
        server, pg_url: str, pg_cluster: PgCluster, tmp_path: Path) -> None:
    srv, label, _at_dump, _sealed, out = _dumped_then_rotated(server, pg_url, tmp_path,
                                                              "OTP-PGX")
    gone = _authd(label, "kek", "expire", "--key", "1", *_store_args(srv))
    assert gone.returncode == 0, gone.stderr
    srv.stop()
    before, before_dbs = _plain(pg_url), _databases(pg_cluster)
    refused = _authd(label, "restore", str(out), "--replace", *_store_args(srv))
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "Traceback" not in refused.stderr
    assert "sealed under key-encryption key 1, which is destroyed" in refused.stderr
    assert _plain(pg_url) == before and _databases(pg_cluster) == before_dbs


def test_a_file_that_is_not_a_dump_is_refused(server, pg_url: str, pg_cluster: PgCluster,
                                              tmp_path: Path) -> None:
    label = _label()
    srv = server(store_url=pg_url, **_kept(label))
    srv.stop()
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"PGDMP" + b"\0" * 64)
    before, before_dbs = _plain(pg_url), _databases(pg_cluster)
    refused = _authd(label, "restore", str(junk), "--replace", *_store_args(srv))
    assert refused.returncode == 2 and "not a pg_dump archive" in refused.stderr, refused.stderr
    assert _plain(pg_url) == before and _databases(pg_cluster) == before_dbs
