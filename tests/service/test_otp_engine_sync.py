"""Who makes a batch durable and answers it, on SQLite (the writer's commits deferred).

When nothing waits for the writer and the syncer is idle, the writer syncs and answers its
batch itself (no hand-off to the syncer); when more wait, the syncer does, while the writer
commits the next batch (syncing a small batch on the writer instead was measured to make the
next batch wait: docs/otp.md, "The tail at 3,000/s offered"). Either way no caller is answered
before the sync that covers its commit, and a failed sync tells each of that batch's callers the
change may not be recorded.
Real SQLite store, the engine's own threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from authd.otp.engine import NOT_DURABLE, GroupCommitEngine
from authd.storage import Database, Tx, open_database
from devices.errors import Unreachable


class Recorder:
    """A handler that writes each job as a row, holding the first batch until ``release``;
    ``events`` keeps the order of syncs and answers, with the thread of each answer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.entered = threading.Event()
        self.release = threading.Event()
        self.events: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._sync = db.sync
        db.sync = self.sync  # type: ignore[method-assign]

    def handle(self, tx: Tx, job: str) -> str:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30)
        tx.execute("INSERT INTO jobs (name) VALUES (?)", (job,))
        return job

    def sync(self) -> None:
        self._sync()
        self.note("sync", threading.current_thread().name)

    def note(self, what: str, thread: str) -> None:
        with self._lock:
            self.events.append((what, thread))

    def answered(self, future: Future[str]) -> None:
        error = future.exception()
        self.note(f"answer {future.result() if error is None else type(error).__name__}",
                  threading.current_thread().name)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Database]:
    db = open_database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.run(lambda tx: tx.execute("CREATE TABLE jobs (name TEXT NOT NULL)"))
    yield db
    db.close()


def _run(db: Database, waiting: int) -> tuple[Recorder, list[Future[str]]]:
    """A first job held in its batch while ``waiting`` more queue behind it, then released."""
    rec = Recorder(db)
    engine: GroupCommitEngine[str, str] = GroupCommitEngine(db, rec.handle, defer_sync=True)
    try:
        first = engine.submit("first", "serial-0")
        first.add_done_callback(rec.answered)
        assert rec.entered.wait(30)
        rest = [engine.submit(f"job-{i}", f"serial-{i + 1}") for i in range(waiting)]
        for future in rest:
            future.add_done_callback(rec.answered)
        rec.release.set()
        futures = [first, *rest]
        for future in futures:
            future.exception(timeout=30)
    finally:
        engine.close()
    return rec, futures


def test_writer_answers_its_batch_itself_when_nothing_waits(store: Database) -> None:
    rec, futures = _run(store, waiting=0)
    assert futures[0].result() == "first"
    # The first batch: synced and answered by the writer, not handed to the syncer.
    assert rec.events[:2] == [("sync", "authd-verify-0"), ("answer first", "authd-verify-0")]
    committed = store.run(lambda tx: tx.all("SELECT name FROM jobs ORDER BY rowid"),
                          write=False)
    assert [r[0] for r in committed] == ["first"]


def test_the_syncer_answers_while_others_wait(store: Database) -> None:
    rec, futures = _run(store, waiting=3)
    assert [f.result() for f in futures] == ["first", "job-0", "job-1", "job-2"]
    # Three wait behind the first batch: the syncer makes it durable and answers it, while
    # the writer goes on with the next batch.
    assert rec.events[:2] == [("sync", "authd-verify-sync"),
                              ("answer first", "authd-verify-sync")]


def test_no_answer_before_its_sync_and_a_failed_sync_is_said(store: Database) -> None:
    rec = Recorder(store)
    real = rec.sync
    failing = threading.Event()

    def sync() -> None:
        if failing.is_set():
            raise OSError(5, "Input/output error")
        real()

    store.sync = sync  # type: ignore[method-assign]
    engine: GroupCommitEngine[str, str] = GroupCommitEngine(store, rec.handle, defer_sync=True)
    try:
        rec.entered.set()  # nothing held
        rec.release.set()
        for i in range(20):
            future = engine.submit(f"job-{i}", f"serial-{i}")
            future.add_done_callback(rec.answered)
            assert future.result(timeout=30) == f"job-{i}"
        syncs = [i for i, (what, _) in enumerate(rec.events) if what == "sync"]
        answers = [i for i, (what, _) in enumerate(rec.events) if what.startswith("answer")]
        assert syncs and answers and syncs[0] < answers[0]
        failing.set()
        broken = engine.submit("lost", "serial-x")
        error = broken.exception(timeout=30)
        assert isinstance(error, Unreachable) and str(error) == NOT_DURABLE
    finally:
        engine.close()
