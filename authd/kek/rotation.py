"""``authd kek rotate``: a new key-encryption key on the token, every sealed value moved under
it while the daemons keep serving, then the old key destroyed (docs/keys.md).

A rotation is a row of ``kek_rotations`` that goes through four states, each step written in
one transaction after the token work it records, so a rotation killed at any point is
finished by the next ``authd kek rotate``:

- ``creating``: key N+1 is in kek_keys as 'new'; the step creates it on the token (or finds it
  there: its label is unique), seals its data key under it, and makes it 'active' (new seals)
  and key N 'retiring' (still opened).
- ``rewrapping``: after every node has had time to see key N+1 (twice ``[kek] refresh_seconds``
  plus the store timeout), passes over every sealed column (authd/kek/sealed.py) seal each
  value again under N+1, in small transactions that change a value only if it is still the
  one read (compare and set: a concurrent change is met again by the next pass), until a pass
  finds nothing left under another key.
- ``destroying``: a last pass finds nothing; key N is destroyed on the token and marked so,
  or, with ``[kek] keep_rotated_days``, kept there as 'retired' (it opens the backups taken
  before this rotation when they are restored: authd/kek/restore.py) until ``authd kek
  expire`` destroys it.
- ``done``.

Reads work throughout: a value names its key, and both keys are open until the end."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from authd.audit import AuditLog
from authd.config import Config
from authd.context import Caller, Role
from authd.kek.keys import (
    ACTIVE,
    DESTROYED,
    NEW,
    RETIRED,
    RETIRING,
    current_id,
    insert_key,
    label_for,
    read_keys,
    set_state,
)
from authd.kek.lock import rotation_lock
from authd.kek.sealed import SEALED, SealedColumn
from authd.secrets import SecretBox, create_token_key, destroy_token_key, sealed_key_id
from authd.storage import Database, Tx
from authd.storage.database import Row
from devices.errors import WrongState

CREATING, REWRAPPING, DESTROYING, DONE = "creating", "rewrapping", "destroying", "done"
ROTATOR = Caller(institution="-", role=Role.ADMIN, subject="authd kek rotate")


@dataclass(frozen=True)
class RotationRow:
    id: int
    from_key: int
    to_key: int
    state: str
    started_at: float
    activated_at: float | None
    finished_at: float | None
    moved: int


_SELECT = ("SELECT id, from_key, to_key, state, started_at, activated_at, finished_at, moved"
           " FROM kek_rotations")


def _row(r: tuple[object, ...]) -> RotationRow:
    return RotationRow(int(str(r[0])), int(str(r[1])), int(str(r[2])), str(r[3]),
                       float(str(r[4])), float(str(r[5])) if r[5] is not None else None,
                       float(str(r[6])) if r[6] is not None else None, int(str(r[7])))


def open_rotation(tx: Tx) -> RotationRow | None:
    """The rotation not finished yet, if any."""
    r = tx.one(_SELECT + " WHERE state <> ? ORDER BY id DESC LIMIT 1", (DONE,))
    return _row(r) if r else None


def last_rotation(tx: Tx) -> RotationRow | None:
    r = tx.one(_SELECT + " ORDER BY id DESC LIMIT 1")
    return _row(r) if r else None


def count_sealed(db: Database, batch: int = 1000) -> dict[str, Counter[int]]:
    """How many values of each sealed column are sealed under each key."""
    out: dict[str, Counter[int]] = {}
    for col in SEALED:
        counts: Counter[int] = Counter()
        for rows in pages(db, col, batch):
            counts.update(sealed_key_id(bytes(r[1])) for r in rows)
        out[col.describe()] = counts
    return out


def pages(db: Database, col: SealedColumn, batch: int) -> Iterator[list[Row]]:
    fields = ", ".join((col.key, col.column, *col.context))
    after: object = None
    while True:
        where = f"{col.column} IS NOT NULL"
        params: tuple[object, ...] = (batch,)
        if after is not None:
            where += f" AND {col.key} > ?"
            params = (after, batch)
        sql = f"SELECT {fields} FROM {col.table} WHERE {where} ORDER BY {col.key} LIMIT ?"
        rows = db.run(functools.partial(_all, sql=sql, params=params), write=False)
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def _all(tx: Tx, sql: str, params: tuple[object, ...]) -> list[Row]:
    return tx.all(sql, params)


class Rotation:
    def __init__(self, config: Config, db: Database, box: SecretBox, *,
                 say: Callable[[str], None] = print, batch: int = 200) -> None:
        self.config = config
        self.db = db
        self.box = box
        self.say = say
        self.batch = batch
        self.audit = AuditLog()
        self.grace = 2 * config.kek.refresh_seconds + config.store.timeout_seconds + 1.0

    def run(self) -> RotationRow:
        """Start a rotation, or finish the one a stopped ``authd kek rotate`` left."""
        with rotation_lock(self.db):
            row = self.db.run(open_rotation, write=False)
            if row is None:
                row = self._begin()
            else:
                self.say(f"resuming the rotation from key {row.from_key} to key {row.to_key} "
                         f"({row.state}, {row.moved:,} value(s) moved so far)")
            while row.state != DONE:
                row = self.step(row)
            return row

    def step(self, row: RotationRow) -> RotationRow:
        """One state forward (the caller holds the rotation lock)."""
        if row.state == CREATING:
            return self._create(row)
        if row.state == REWRAPPING:
            return self._rewrap(row)
        if row.state == DESTROYING:
            return self._destroy(row)
        raise WrongState(f"rotation {row.id} is in an unknown state {row.state!r}")

    def _record(self, tx: Tx, row_to: int, outcome: str, detail: dict[str, object]) -> None:
        self.audit.record(tx, action="kek.rotate", target=f"kek:{row_to}", outcome=outcome,
                          detail=detail, caller=ROTATOR)

    # ------------------------------------------------------------------ the steps
    def begin(self) -> RotationRow:
        """Only the first step (the caller holds the rotation lock)."""
        return self._begin()

    def _begin(self) -> RotationRow:
        if self.config.kek.kind != "pkcs11":
            raise WrongState("a key file cannot be rotated here: [kek] kind = \"pkcs11\" keeps "
                             "the key-encryption key on a token")
        now = time.time()

        def begin(tx: Tx) -> RotationRow:
            if open_rotation(tx) is not None:
                raise WrongState("a rotation is not finished; run authd kek rotate to finish it")
            keys = read_keys(tx)
            odd = [k for k in keys if k.state in (NEW, RETIRING)]
            if odd:
                raise WrongState(f"key {odd[0].id} is {odd[0].state} without a rotation")
            old = current_id(keys)
            new = max(k.id for k in keys) + 1
            label = label_for(self.config.kek.key_label, new)
            insert_key(tx, new, label, NEW, None, now)
            last = tx.one("SELECT MAX(id) FROM kek_rotations")
            rid = int(last[0]) + 1 if last and last[0] is not None else 1
            tx.execute("INSERT INTO kek_rotations (id, from_key, to_key, state, started_at)"
                       " VALUES (?, ?, ?, ?, ?)", (rid, old, new, CREATING, now))
            self._record(tx, new, "started", {"from_kek": old, "to_kek": new, "label": label})
            return RotationRow(rid, old, new, CREATING, now, None, None, 0)

        row = self.db.run(begin)
        self.say(f"rotation {row.id}: key {row.from_key} to key {row.to_key}")
        return row

    def _create(self, row: RotationRow) -> RotationRow:
        label = self._label(row.to_key)
        kek = create_token_key(self.config, label)
        try:
            sealed = None
            if self.box.mode == "data-key":
                from authd.kek.keys import data_key_aad

                sealed = kek.encrypt(kek.random(32), data_key_aad(row.to_key))
        finally:
            kek.close()
        now = time.time()

        def activate(tx: Tx) -> None:
            set_state(tx, row.to_key, ACTIVE, sealed_data_key=sealed)
            set_state(tx, row.from_key, RETIRING)
            tx.execute("UPDATE kek_rotations SET state = ?, activated_at = ? WHERE id = ?",
                       (REWRAPPING, now, row.id))
            self._record(tx, row.to_key, "activated", {"from_kek": row.from_key,
                                                       "to_kek": row.to_key, "label": label})

        self.db.run(activate)
        self.box.refresh()
        self.say(f"key {row.to_key} created on the token ({label}); new seals go under it")
        return RotationRow(row.id, row.from_key, row.to_key, REWRAPPING, row.started_at, now,
                           None, row.moved)

    def _label(self, key_id: int) -> str:
        for key in self.db.run(read_keys, write=False):
            if key.id == key_id:
                return key.key_label
        raise WrongState(f"key {key_id} is not in the store")

    def _wait_for_nodes(self, row: RotationRow) -> None:
        start = row.activated_at if row.activated_at is not None else time.time()
        left = start + self.grace - time.time()
        if left > 0:
            self.say(f"waiting {left:.1f} s until every node seals under key {row.to_key}")
            time.sleep(left)

    def _rewrap(self, row: RotationRow) -> RotationRow:
        self._wait_for_nodes(row)
        total = 0
        while True:
            moved, missed = self.rewrap_pass(row)
            total += moved
            if moved == 0 and missed == 0:
                break

        def done(tx: Tx) -> int:
            tx.execute("UPDATE kek_rotations SET state = ? WHERE id = ?", (DESTROYING, row.id))
            r = tx.one("SELECT moved FROM kek_rotations WHERE id = ?", (row.id,))
            moved = int(r[0]) if r else 0
            self._record(tx, row.to_key, "rewrapped", {"from_kek": row.from_key,
                                                       "to_kek": row.to_key, "moved": moved})
            return moved

        moved_all = self.db.run(done)
        self.say(f"every sealed value is under key {row.to_key} ({moved_all:,} moved)")
        return RotationRow(row.id, row.from_key, row.to_key, DESTROYING, row.started_at,
                           row.activated_at, None, moved_all)

    def rewrap_pass(self, row: RotationRow) -> tuple[int, int]:
        """Seal every value not under ``row.to_key`` again under it. Returns (moved, missed:
        values changed by someone else between read and write)."""
        moved = missed = 0
        for col in SEALED:
            update = (f"UPDATE {col.table} SET {col.column} = ? WHERE {col.key} = ?"
                      f" AND {col.column} = ?")
            for rows in pages(self.db, col, self.batch):
                changes = []
                for r in rows:
                    blob = bytes(r[1])
                    try:
                        again = self.box.reseal(blob, col.aad((r[0], *r[2:])), row.to_key)
                    except WrongState as exc:
                        raise WrongState(f"{col.describe()} of {r[0]!r} cannot be opened "
                                         f"({exc}); the rotation stops here, nothing of it "
                                         "changed") from None
                    if again is not None:
                        changes.append((again, r[0], blob))
                if not changes:
                    continue

                def write(tx: Tx, changes: list[tuple[bytes, object, bytes]] = changes,
                          update: str = update) -> int:
                    n = sum(tx.execute(update, c) for c in changes)
                    tx.execute("UPDATE kek_rotations SET moved = moved + ? WHERE id = ?",
                               (n, row.id))
                    return n

                n = self.db.run(write)
                moved += n
                missed += len(changes) - n
                self.say(f"moved {n:,} value(s) of {col.describe()} to key {row.to_key}")
        return moved, missed

    def _destroy(self, row: RotationRow) -> RotationRow:
        moved, missed = self.rewrap_pass(row)  # the last look: nothing may be left
        if moved or missed:
            self.db.run(lambda tx: tx.execute(
                "UPDATE kek_rotations SET state = ? WHERE id = ?", (REWRAPPING, row.id)))
            return RotationRow(row.id, row.from_key, row.to_key, REWRAPPING, row.started_at,
                               row.activated_at, None, row.moved + moved)
        label = self._label(row.from_key)
        keep = self.config.kek.keep_rotated_days > 0
        gone = False if keep else destroy_token_key(self.config, label)
        now = time.time()

        def finish(tx: Tx) -> None:
            if keep:
                set_state(tx, row.from_key, RETIRED, retired_at=now)
                self.audit.record(tx, action="kek.retire", target=f"kek:{row.from_key}",
                                  outcome="ok", detail={
                                      "label": label,
                                      "keep_days": self.config.kek.keep_rotated_days},
                                  caller=ROTATOR)
            else:
                destroyed(tx, row.from_key, label, gone, now, self.audit)
            tx.execute("UPDATE kek_rotations SET state = ?, finished_at = ? WHERE id = ?",
                       (DONE, now, row.id))
            self._record(tx, row.to_key, "done", {"from_kek": row.from_key,
                                                  "to_kek": row.to_key, "moved": row.moved})

        self.db.run(finish)
        self.box.refresh()
        if keep:
            until = now + self.config.kek.keep_rotated_days * 86400
            self.say(f"key {row.from_key} retired: kept on the token ({label}) until "
                     f"{time.strftime('%Y-%m-%d', time.gmtime(until))} so that older backups "
                     f"can be restored (authd kek expire destroys it then); rotation {row.id} "
                     "done")
        else:
            self.say(f"key {row.from_key} destroyed on the token ({label}); rotation {row.id} "
                     "done")
        return RotationRow(row.id, row.from_key, row.to_key, DONE, row.started_at,
                           row.activated_at, now, row.moved)


def destroyed(tx: Tx, key_id: int, label: str, on_token: bool, now: float,
              audit: AuditLog) -> None:
    """Record that key ``key_id`` is gone from the token."""
    set_state(tx, key_id, DESTROYED, destroyed_at=now)
    if key_id == 1:  # key 1's data key, kept in store_meta since before ids
        tx.execute("DELETE FROM store_meta WHERE name = ?", ("data_key",))
    audit.record(tx, action="kek.destroy", target=f"kek:{key_id}", outcome="ok",
                 detail={"label": label, "on_token": on_token}, caller=ROTATOR)


def expire(config: Config, db: Database, *, key_id: int | None = None,
           now: float | None = None) -> list[int]:
    """Destroy the retired keys whose ``[kek] keep_rotated_days`` have passed (or key
    ``key_id`` now, which must be retired). Returns the keys destroyed."""
    now = time.time() if now is None else now
    keep = config.kek.keep_rotated_days * 86400
    audit = AuditLog()
    out = []
    with rotation_lock(db):
        keys = db.run(read_keys, write=False)
        if key_id is not None:
            named = [k for k in keys if k.id == key_id]
            if not named or named[0].state != RETIRED:
                state = named[0].state if named else "not in the store"
                raise WrongState(f"key {key_id} is {state}: only a retired key is destroyed "
                                 "by authd kek expire")
            due = named
        else:
            due = [k for k in keys if k.state == RETIRED
                   and (k.retired_at or 0.0) + keep <= now]
        for key in due:
            gone = destroy_token_key(config, key.key_label)
            db.run(functools.partial(destroyed, key_id=key.id, label=key.key_label,
                                     on_token=gone, now=time.time(), audit=audit))
            out.append(key.id)
    return out
