"""Holding the store from another connection, so that verifications queue up meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from authd.otp.feature import OtpFeature
from authd.storage import open_database
from tests.conftest import wait_for


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


def wait_backlog(srv: Any, in_flight: int, queued: int = 0, timeout: float = 60) -> None:
    """Wait until the node's OTP engine holds at least ``in_flight`` verifications in the
    batch its writer commits (waiting for the held store) and ``queued`` behind it."""
    engine = srv.app.require(OtpFeature).engine

    def held() -> bool:
        now_in_flight, now_queued = engine.backlog()
        return now_in_flight >= in_flight and now_queued >= queued

    assert wait_for(held, timeout=timeout), engine.backlog()
