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


@contextmanager
def loop_commit_held(srv: Any) -> Iterator[Callable[[], None]]:
    """Hold the commits of the node's loop engine (``[otp] engine = "loop"``) until the
    returned function is called: its committer thread waits meanwhile, so the batch that
    reaches it stays in flight while the event loop goes on taking calls, which queue behind
    it. (Holding the store instead would hold the loop itself, in its batch's BEGIN: nothing
    could queue.)"""
    engine = srv.app.require(OtpFeature).engine
    release = threading.Event()
    engine._committer.submit(release.wait, 60)
    try:
        yield release.set
    finally:
        release.set()


def wait_backlog(srv: Any, in_flight: int, queued: int = 0, timeout: float = 60) -> None:
    """Wait until the node's OTP engine holds at least ``in_flight`` verifications in the
    batch its writer commits (waiting for the held store) and ``queued`` behind it: in the
    engine's queue or, behind the native front end, in the front end's link, not yet sent
    (it sends the engine a few frames at a time)."""
    engine = srv.app.require(OtpFeature).engine

    def backlog() -> tuple[int, int]:
        now_in_flight, now_queued = engine.backlog()
        return now_in_flight, now_queued + front_queued(srv, "engine")

    def held() -> bool:
        now_in_flight, now_queued = backlog()
        return now_in_flight >= in_flight and now_queued >= queued

    assert wait_for(held, timeout=timeout), backlog()


def front_queued(srv: Any, link: str) -> int:
    """What waits in the native front end's ``link`` (``engine``, ``calls``), not yet sent to
    the daemon; 0 without a native front end."""
    front = srv._bg.running.front
    return 0 if front is None else front.tally.queued()[link]
