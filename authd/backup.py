"""``authd backup OUT`` and ``authd restore IN`` for the SQLite store.

A backup is taken online with SQLite's backup API: one read transaction over the whole file,
so it is the store as of one moment, WAL included, while the daemon keeps writing (readers do
not block writers in WAL mode). The copy is checked before it is kept — ``PRAGMA
integrity_check`` and the audit chain verified on the copy — and written as::

    authd-backup 1\\n
    {"created_at": ..., "db_bytes": N, "db_sha256": "...", "head": {...}, ...}\\n
    N bytes: the SQLite database

Restore refuses a file whose header, length, checksum, SQLite structure, schema or audit chain
is wrong, and changes nothing then. It copies the database into the store in one transaction
(the backup API again), records ``audit.restore`` in the restored trail, and sets the node's
witness file aside (the restored trail legitimately ends before the head it last saw). A
backup taken before a key-encryption-key rotation is re-sealed under the store's current key
on the way in (authd/kek/restore.py).

PostgreSQL stores are backed up as pg_dump archives (authd/pg_backup.py) or by continuous
archiving (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from authd.audit import AuditLog
from authd.audit.chain import read_head
from authd.audit.signing import KeyRing
from authd.audit.verify import Report, verify
from authd.config import Config
from authd.kek.restore import onto_current_keys, read_store_keys
from authd.storage import migrate, open_database
from authd.storage.migrations import available
from devices.errors import BadRequest, WrongState

MAGIC = b"authd-backup 1\n"
_MAX_HEADER = 64 * 1024
_CHUNK = 1 << 20


@dataclass
class BackupResult:
    path: Path
    meta: dict[str, Any]
    report: Report | None


def sqlite_path(cfg: Config) -> Path:
    url = cfg.store_url
    if not url.startswith("sqlite:///"):
        raise BadRequest(
            "authd backup and restore work on SQLite stores; back up a PostgreSQL store with "
            "pg_dump or continuous archiving (point-in-time recovery), see docs/audit.md")
    return Path(url[len("sqlite:///"):])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_database(path: Path) -> int:
    """Integrity and schema of a SQLite file; returns its schema version."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if result != ["ok"]:
                raise WrongState(f"the database fails its integrity check: "
                                         f"{'; '.join(result[:3])}")
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise WrongState(f"not a readable authd database: {exc}") from None
    version = int(row[0]) if row and row[0] is not None else 0
    known = max(v for v, _, _ in available())
    if not version:
        raise WrongState("not an authd database (no schema migrations)")
    if version > known:
        raise WrongState(f"the database has schema {version}, newer than this authd "
                                 f"({known})")
    return version


def _verify_chain(path: Path, keys: KeyRing | None) -> Report | None:
    if keys is None:
        return None
    db = open_database(f"sqlite:///{path}")
    try:
        return verify(db, keys)
    finally:
        db.close()


def backup(cfg: Config, out: Path, keys: KeyRing | None) -> BackupResult:
    source = sqlite_path(cfg)
    if not source.exists():
        raise WrongState(f"no store at {source}")
    if out.exists():
        raise BadRequest(f"{out} exists: a backup never overwrites a file")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-db")
    started = time.time()
    try:
        src = sqlite3.connect(source, timeout=30.0)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # one step: a consistent snapshot of the store
        finally:
            src.close()
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.close()
        version = _check_database(partial)
        report = _verify_chain(partial, keys)
        meta = _meta(partial, source, started, version)
        _write_container(partial, out, meta)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(out, meta, report)


def _meta(db_file: Path, source: Path, started: float, version: int) -> dict[str, Any]:
    digest = hashlib.sha256()
    with db_file.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    db = open_database(f"sqlite:///{db_file}")
    try:
        head = db.run(read_head, write=False) if version >= 30 else None
        counts = db.run(lambda tx: tx.one("SELECT COUNT(*), MAX(id) FROM audit_log"),
                        write=False) if version >= 30 else None
    finally:
        db.close()
    return {"created_at": started, "source": str(source), "schema": version,
            "sqlite": sqlite3.sqlite_version, "db_bytes": db_file.stat().st_size,
            "db_sha256": digest.hexdigest(), "head": head.head() if head else None,
            "audit_records": int(counts[0]) if counts else 0,
            "audit_last_id": int(counts[1]) if counts and counts[1] is not None else 0}


def _write_container(db_file: Path, out: Path, meta: dict[str, Any]) -> None:
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with tmp.open("xb") as fh, db_file.open("rb") as src:
            fh.write(MAGIC)
            fh.write(json.dumps(meta, sort_keys=True).encode() + b"\n")
            while chunk := src.read(_CHUNK):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        _fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)


def read_header(fh: BinaryIO, name: str) -> dict[str, Any]:
    magic = fh.read(len(MAGIC))
    if magic != MAGIC:
        raise WrongState(f"{name} is not an authd backup (bad header)")
    line = fh.readline(_MAX_HEADER)
    try:
        meta = json.loads(line)
    except ValueError:
        raise WrongState(f"{name}: the backup's description is damaged") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("db_bytes"), int) or \
            not isinstance(meta.get("db_sha256"), str):
        raise WrongState(f"{name}: the backup's description is incomplete")
    return meta


def _extract(src: Path, dest: Path) -> dict[str, Any]:
    """The backup's database into ``dest``, checked against its length and checksum."""
    try:
        fh = src.open("rb")
    except OSError as exc:
        raise BadRequest(f"cannot read {src}: {exc.strerror or exc}") from None
    with fh:
        meta = read_header(fh, str(src))
        digest = hashlib.sha256()
        size = 0
        with dest.open("xb") as out:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                if size > meta["db_bytes"]:
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    if size != meta["db_bytes"]:
        raise WrongState(f"{src} is {'truncated' if size < meta['db_bytes'] else 'longer'}"
                                 f": {size:,} of {meta['db_bytes']:,} database bytes")
    if digest.hexdigest() != meta["db_sha256"]:
        raise WrongState(f"{src} is damaged: its checksum does not match")
    return meta


def _claim(target: Path) -> sqlite3.Connection:
    """A connection to the store that no other process has open.

    Leaving WAL mode needs every other connection closed, so this fails while a daemon (or
    any other reader) has the store open: restoring under a running daemon would leave it
    serving from state the restore just replaced."""
    dest = sqlite3.connect(target, timeout=2.0)
    try:
        dest.execute("PRAGMA journal_mode=DELETE").fetchone()
    except sqlite3.OperationalError:
        dest.close()
        raise WrongState(f"the store at {target} is in use (is authd running?): stop the "
                         "daemon, then restore; nothing restored") from None
    return dest


def _release(dest: sqlite3.Connection) -> None:
    try:
        dest.execute("PRAGMA journal_mode=WAL").fetchone()
    finally:
        dest.close()


@dataclass
class RestoreResult:
    meta: dict[str, Any]
    report: Report | None
    witness_moved: Path | None
    resealed: int = 0  # values of the backup sealed again under the store's current key
    current_key: int = 0


def check(src: Path, keys: KeyRing | None, workdir: Path) -> tuple[dict[str, Any], Report | None]:
    """Everything restore checks, without restoring."""
    scratch = workdir / f".restore-check-{os.getpid()}.db"
    try:
        meta = _extract(src, scratch)
        version = _check_database(scratch)
        report = _verify_chain(scratch, keys) if version >= 30 else None
    finally:
        scratch.unlink(missing_ok=True)
    return meta, report


def restore(cfg: Config, src: Path, keys: KeyRing | None, *, replace: bool,
            witness: Path | None) -> RestoreResult:
    target = sqlite_path(cfg)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and target.stat().st_size > 0 and not replace:
        raise WrongState(f"a store exists at {target}: stop the daemon and restore with "
                                 f"--replace to overwrite it")
    staged = target.with_name(f".{target.name}.restoring")
    staged.unlink(missing_ok=True)
    current = read_store_keys(target)
    try:
        meta = _extract(src, staged)
        version = _check_database(staged)
        report = _verify_chain(staged, keys) if version >= 30 else None
        if report is not None and not report.ok:
            raise WrongState(
                f"{src}: the audit trail in the backup was tampered with (first bad record "
                f"{report.first_bad_record}); nothing restored")
        resealed, current_key = onto_current_keys(cfg, staged, current)
        conn = sqlite3.connect(staged)
        conn.execute("PRAGMA journal_mode=WAL")
        try:
            dest = _claim(target)
            try:
                conn.backup(dest)  # replaces the store's content in one transaction
            finally:
                _release(dest)
        finally:
            conn.close()
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{staged}{suffix}").unlink(missing_ok=True)
    moved = None
    if witness is not None and witness.exists():
        moved = witness.with_name(f"{witness.name}.before-restore-{int(time.time())}")
        os.replace(witness, moved)
    db = open_database(cfg.store_url)
    try:
        migrate(db)
        detail = {"backup_created_at": meta.get("created_at"),
                  "records_up_to": meta.get("audit_last_id")}
        if resealed:
            detail.update(resealed=resealed, under_kek=current_key)
        log = AuditLog()
        db.run(lambda tx: log.record(tx, action="audit.restore", target="audit",
                                     outcome="restored", detail=detail))
    finally:
        db.close()
    return RestoreResult(meta, report, moved, resealed, current_key)
