"""A restored backup moved under the store's current key-encryption key (docs/keys.md).

A backup taken before a rotation holds values sealed under the key that rotation retired.
Restored onto the store (``authd restore --replace``), it takes over the store's own
``kek_keys`` and ``kek_rotations`` (so the restored store knows its current key and which keys
are retired or destroyed), and every value of the backup is sealed again under the current
key, opened with the retired key still on the token. A value under a destroyed key opens
nowhere: such a backup is refused and nothing is restored. A backup of another store (its keys
are not this store's) is restored with its own keys, as before."""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from authd.config import Config
from authd.kek.keys import DESTROYED, NEW, RETIRING, KeyRow, current_id, read_keys
from authd.kek.rotation import count_sealed, pages
from authd.kek.sealed import SEALED
from authd.secrets import SecretBox, restore_box
from authd.storage import Database, Tx, migrate, open_database
from devices.errors import Unreachable, WrongState

_ROTATIONS = ("id", "from_key", "to_key", "state", "started_at", "activated_at",
              "finished_at", "moved")


@dataclass(frozen=True)
class StoreKeys:
    """The keys and rotations of the store a restore replaces."""

    keys: list[KeyRow]
    rotations: list[tuple[object, ...]]


def read_store_keys(store: Path) -> StoreKeys | None:
    """The store's keys, read before it is replaced; None when there is no such store."""
    if not store.exists() or store.stat().st_size == 0:
        return None
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5.0)
    try:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(kek_keys)")}
        if not columns:
            return None
        retired = "retired_at" if "retired_at" in columns else "NULL"
        rows = conn.execute("SELECT id, key_label, state, sealed_data_key, created_at,"
                            f" destroyed_at, {retired} FROM kek_keys ORDER BY id").fetchall()
        rotations = conn.execute(f"SELECT {', '.join(_ROTATIONS)} FROM kek_rotations"
                                 " ORDER BY id").fetchall()
    except sqlite3.DatabaseError:
        return None  # not an authd store: restore's own checks speak of it
    finally:
        conn.close()
    keys = [KeyRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]) if r[3] is not None else None,
                   float(r[4]), float(r[5]) if r[5] is not None else None,
                   float(r[6]) if r[6] is not None else None) for r in rows]
    return StoreKeys(keys, [tuple(r) for r in rotations])


def onto_current_keys(config: Config, staged: Path, store: StoreKeys | None) -> tuple[int, int]:
    """Re-seal the staged backup under the store's current key. Returns (values re-sealed,
    the current key); (0, 0) when nothing was rotated since the backup was taken."""
    if store is None or not store.keys:
        return 0, 0
    db = open_database(f"sqlite:///{staged}")
    try:
        return onto_current_keys_of(config, db, store)
    finally:
        db.close()


def onto_current_keys_of(config: Config, db: Database, store: StoreKeys | None) -> tuple[int, int]:
    """The same on a staged copy open as ``db`` (a PostgreSQL staging database)."""
    if store is None or not store.keys:
        return 0, 0
    migrate(db)
    return _rekey(config, db, store)


def read_keys_of(db: Database) -> StoreKeys | None:
    """The keys of a store open as ``db``; None when it holds none (an empty database)."""

    def read(tx: Tx) -> StoreKeys | None:
        present = tx.one("SELECT to_regclass('kek_keys') IS NOT NULL") if \
            tx.dialect == "postgresql" else \
            tx.one("SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'kek_keys'")
        if not present or not present[0]:
            return None
        rotations = tx.all(f"SELECT {', '.join(_ROTATIONS)} FROM kek_rotations ORDER BY id")
        return StoreKeys(read_keys(tx), [tuple(r) for r in rotations])

    return db.run(read, write=False)


def _rekey(config: Config, db: Database, store: StoreKeys) -> tuple[int, int]:
    backup_keys = {k.id: k for k in db.run(read_keys, write=False)}
    if not _same_store(backup_keys, store.keys):
        return 0, 0  # another store's backup: it comes with its own keys, as it always did
    if any(k.state in (NEW, RETIRING) for k in store.keys):
        raise WrongState("a key-encryption-key rotation of this store is not finished: finish "
                         "it with authd kek rotate, then restore; nothing restored")
    if {k.id: k.state for k in backup_keys.values()} == {k.id: k.state for k in store.keys}:
        return 0, 0  # no rotation since the backup was taken
    merged = {**backup_keys, **{k.id: k for k in store.keys}}
    rows = [merged[i] for i in sorted(merged)]
    _refuse_destroyed(db, merged)
    try:
        box = restore_box(config, rows)
    except Unreachable as exc:
        raise WrongState(f"a key the backup needs is not on the token ({exc}); nothing "
                         "restored") from None
    try:
        db.run(functools.partial(_take_over, keys=rows, rotations=store.rotations))
        return _reseal(db, box, current_id(rows)), current_id(rows)
    finally:
        box.close()


def _same_store(backup: dict[int, KeyRow], store: list[KeyRow]) -> bool:
    """Whether the backup is of this store: the keys both name are the same keys (label and
    sealed data key), and they name one at least (a backup from before key ids names none, and
    is restored with its own key 1 as before)."""
    common = [k for k in store if k.id in backup]
    return bool(common) and all(backup[k.id].key_label == k.key_label
               and (backup[k.id].sealed_data_key is None or k.sealed_data_key is None
                    or backup[k.id].sealed_data_key == k.sealed_data_key) for k in common)


def _refuse_destroyed(db: Database, keys: dict[int, KeyRow]) -> None:
    for column, by_key in count_sealed(db).items():
        for key_id, n in sorted(by_key.items()):
            key = keys.get(key_id)
            if key is None or key.state == DESTROYED:
                state = "destroyed" if key is not None else "unknown to this store"
                raise WrongState(f"the backup holds {n:,} value(s) of {column} sealed under "
                                 f"key-encryption key {key_id}, which is {state}: they open "
                                 "nowhere, so the backup cannot be restored; nothing restored")


def _take_over(tx: Tx, keys: list[KeyRow], rotations: list[tuple[object, ...]]) -> None:
    tx.execute("DELETE FROM kek_keys")
    for k in keys:
        tx.execute("INSERT INTO kek_keys (id, key_label, state, sealed_data_key, created_at,"
                   " destroyed_at, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (k.id, k.key_label, k.state, k.sealed_data_key, k.created_at,
                    k.destroyed_at, k.retired_at))
    for r in rotations:
        tx.execute("DELETE FROM kek_rotations WHERE id = ?", (r[0],))
        tx.execute(f"INSERT INTO kek_rotations ({', '.join(_ROTATIONS)})"
                   f" VALUES ({', '.join('?' * len(_ROTATIONS))})", r)
    if any(k.id == 1 and k.state == DESTROYED for k in keys):
        tx.execute("DELETE FROM store_meta WHERE name = ?", ("data_key",))


def _reseal(db: Database, box: SecretBox, to_key: int) -> int:
    moved = 0
    for col in SEALED:
        update = f"UPDATE {col.table} SET {col.column} = ? WHERE {col.key} = ?"
        for rows in pages(db, col, 500):
            changes = []
            for r in rows:
                again = box.reseal(bytes(r[1]), col.aad((r[0], *r[2:])), to_key)
                if again is not None:
                    changes.append((again, r[0]))
            if changes:
                db.run(functools.partial(_write, update=update, changes=changes))
                moved += len(changes)
    return moved


def _write(tx: Tx, update: str, changes: list[tuple[bytes, object]]) -> None:
    for change in changes:
        tx.execute(update, change)
