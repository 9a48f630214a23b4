"""The rows of ``kek_keys``: the key-encryption keys a store's sealed data depends on."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from authd.storage import Tx

KeyState = Literal["new", "active", "retiring", "retired", "destroyed"]
NEW: KeyState = "new"  # being created on the token by a rotation; seals nothing yet
ACTIVE: KeyState = "active"  # new seals go under it
RETIRING: KeyState = "retiring"  # opens what a rotation has not moved yet
RETIRED: KeyState = "retired"  # rotated out, kept on the token for restores of older backups
DESTROYED: KeyState = "destroyed"  # gone from the token; nothing is sealed under it
OPEN_STATES = (ACTIVE, RETIRING)

_AAD_DATA_KEY_1 = b"authd data key v1"  # key 1's data key (stored in store_meta before ids)


@dataclass(frozen=True)
class KeyRow:
    id: int
    key_label: str
    state: str
    sealed_data_key: bytes | None
    created_at: float
    destroyed_at: float | None
    retired_at: float | None = None


def data_key_aad(key_id: int) -> bytes:
    """What a key's data key is bound to when sealed under it."""
    return _AAD_DATA_KEY_1 if key_id == 1 else b"authd data key v1 of key %d" % key_id


def label_for(base: str, key_id: int) -> str:
    """The token label of key ``key_id`` (key 1 is ``[kek] key_label`` itself). A random
    tail makes a label unique, so a resumed rotation finds its own key, never an older one."""
    return f"{base}.{key_id}.{secrets.token_hex(4)}"


def read_keys(tx: Tx) -> list[KeyRow]:
    rows = tx.all("SELECT id, key_label, state, sealed_data_key, created_at, destroyed_at,"
                  " retired_at FROM kek_keys ORDER BY id")
    return [KeyRow(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]) if r[3] is not None else None,
                   float(r[4]), float(r[5]) if r[5] is not None else None,
                   float(r[6]) if r[6] is not None else None) for r in rows]


def insert_key(tx: Tx, key_id: int, label: str, state: KeyState, sealed_data_key: bytes | None,
               now: float) -> None:
    tx.execute("INSERT INTO kek_keys (id, key_label, state, sealed_data_key, created_at)"
               " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
               (key_id, label, state, sealed_data_key, now))


def set_state(tx: Tx, key_id: int, state: KeyState, *, sealed_data_key: bytes | None = None,
              destroyed_at: float | None = None, retired_at: float | None = None) -> None:
    if state == RETIRED:
        tx.execute("UPDATE kek_keys SET state = ?, retired_at = ? WHERE id = ?",
                   (state, retired_at, key_id))
    elif state == DESTROYED:
        tx.execute("UPDATE kek_keys SET state = ?, sealed_data_key = NULL, destroyed_at = ?"
                   " WHERE id = ?", (state, destroyed_at, key_id))
    elif sealed_data_key is not None:
        tx.execute("UPDATE kek_keys SET state = ?, sealed_data_key = ? WHERE id = ?",
                   (state, sealed_data_key, key_id))
    else:
        tx.execute("UPDATE kek_keys SET state = ? WHERE id = ?", (state, key_id))


def current_id(rows: list[KeyRow]) -> int:
    """The key new seals go under: the newest active one."""
    active = [r.id for r in rows if r.state == ACTIVE]
    if not active:
        raise ValueError("the store names no active key-encryption key")
    return max(active)


def being_destroyed(tx: Tx) -> set[int]:
    """Keys a rotation has moved every value away from and is destroying now."""
    return {int(r[0]) for r in tx.all("SELECT from_key FROM kek_rotations WHERE state = ?",
                                      ("destroying",))}
