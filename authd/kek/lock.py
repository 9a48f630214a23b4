"""One rotation at a time per store: a lock held by the rotating process, released by the
system when that process ends however it ends (so a killed rotation never blocks the next).

PostgreSQL: a session advisory lock on a connection of its own (every node of the store sees
it). SQLite: an exclusive ``flock`` on ``<store>.kek-rotation.lock`` beside the store file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authd.storage import Database
from authd.storage.database import PostgresDatabase, SqliteDatabase
from devices.errors import Unreachable, WrongState

_PG_KEY = 0x6B656B72  # "kekr"
RUNNING = "ROTATION_RUNNING"


def _busy() -> WrongState:
    return WrongState("another key-encryption-key rotation is running on this store; wait for "
                      "it to finish (authd kek status shows its progress)", reason=RUNNING)


@contextmanager
def rotation_lock(db: Database) -> Iterator[None]:
    if isinstance(db, SqliteDatabase):
        path = Path(f"{db.path}.kek-rotation.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _busy() from None
            yield
        finally:
            os.close(fd)  # releases the lock
        return
    if not isinstance(db, PostgresDatabase):
        raise WrongState(f"no rotation lock for {type(db).__name__}")
    import psycopg

    try:
        conn: Any = psycopg.connect(db.url, autocommit=True, connect_timeout=10,
                                    application_name="authd kek rotate")
    except psycopg.OperationalError as exc:
        raise Unreachable(f"the store is unavailable: {str(exc).splitlines()[0]}") from None
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_PG_KEY,)).fetchone()
        if not row or not row[0]:
            raise _busy()
        yield
    finally:
        conn.close()  # ends the session and with it the lock
