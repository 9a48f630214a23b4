"""Holding the store from another connection, so that verifications queue up meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from authd.storage import open_database


@contextmanager
def store_held(store_url: str, serial: str) -> Iterator[Callable[[], None]]:
    """Hold the store (SQLite: its write lock; PostgreSQL: ``serial``'s row) from another
    connection until the returned function is called, so verifications queue up meanwhile and
    the writer takes them as one batch."""
    db = open_database(store_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction() as tx:
            tx.one("SELECT serial FROM otp_devices WHERE serial = ?" + tx.for_update, (serial,))
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        yield release.set
    finally:
        release.set()
        holder.join()
        db.close()
