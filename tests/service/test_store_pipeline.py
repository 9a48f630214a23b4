"""Pipelined transactions on PostgreSQL (the OTP engine's batches): the writes and the COMMIT
leave together and are answered by one sync; a statement that fails anywhere in the pipeline,
or the COMMIT itself, leaves nothing written and raises that statement's error."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from authd.otp.engine import Many, commit_batch
from authd.storage import Database, Tx, open_database
from devices.errors import AuthdError

_TABLE = ("CREATE TABLE pipe_rows (id integer PRIMARY KEY, n integer NOT NULL,"
          " tag text UNIQUE DEFERRABLE INITIALLY DEFERRED)")


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    db = open_database(pg_url, pool_size=1)  # one connection: the next transaction reuses it
    db.run(lambda tx: tx.execute(_TABLE))
    yield db
    db.close()


def _rows(db: Database) -> list[tuple[Any, ...]]:
    return db.run(lambda tx: tx.all("SELECT id, n, tag FROM pipe_rows ORDER BY id"),
                  write=False)


def _run_traced(db: Database, fn: Any) -> list[str]:
    """Run ``fn(tx)`` pipelined, and the protocol messages from its first statement to the
    end of the transaction, its COMMIT included."""
    box: dict[str, Any] = {}
    fd, name = tempfile.mkstemp()

    def body(tx: Tx) -> None:
        pgconn = tx._cur.connection.pgconn
        box["pgconn"] = pgconn
        pgconn.trace(fd)
        fn(tx)

    try:
        db.run(body, pipeline=True)
        box["pgconn"].untrace()
        with open(name, encoding="utf-8", errors="replace") as trace:
            return trace.read().splitlines()
    finally:
        os.close(fd)
        os.unlink(name)


def _insert(tx: Tx, rows: list[tuple[int, int, str]]) -> None:
    for row in rows:
        tx.execute("INSERT INTO pipe_rows (id, n, tag) VALUES (?, ?, ?)", row)


def test_the_commit_travels_with_the_writes(db: Database):
    trace = _run_traced(db, lambda tx: _insert(tx, [(1, 1, "a"), (2, 2, "b"), (3, 3, "c")]))
    # One wait for the server in all: the writes, then COMMIT in the same pipeline, one Sync.
    received = [line for line in trace if "\tB\t" in line]
    assert sum("ReadyForQuery" in line for line in received) == 1, trace
    sent = [line for line in trace if "\tF\t" in line]
    assert sum("Sync" in line for line in sent) == 1, trace
    assert not any("\tQuery\t" in line for line in sent), trace  # no COMMIT of its own
    assert any("COMMIT" in line for line in sent), trace
    # Answered only once committed: another session sees every row.
    assert _rows(db) == [(1, 1, "a"), (2, 2, "b"), (3, 3, "c")]


def test_a_write_failing_midway_leaves_nothing(db: Database):
    def half(tx: Tx) -> None:
        _insert(tx, [(1, 1, "a"), (2, 2, "b")])
        tx.execute("UPDATE pipe_rows SET n = 2147483647 + n WHERE id = 1")  # integer overflow
        _insert(tx, [(3, 3, "c")])

    with pytest.raises(psycopg.errors.NumericValueOutOfRange):  # the failing statement's own
        db.run(half, pipeline=True)
    assert _rows(db) == []
    _insert_and_check(db)


def test_a_commit_that_fails_leaves_nothing(db: Database):
    # The deferred unique constraint is checked by COMMIT, which is in the pipeline.
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.run(lambda tx: _insert(tx, [(1, 1, "same"), (2, 2, "same")]), pipeline=True)
    assert _rows(db) == []
    _insert_and_check(db)


def _insert_and_check(db: Database) -> None:
    """The connection of the failed transaction serves the next one (pool of one)."""
    db.run(lambda tx: _insert(tx, [(7, 7, "x")]), pipeline=True)
    assert _rows(db) == [(7, 7, "x")]


def test_a_batch_failing_at_its_commit_answers_every_job_and_writes_nothing(db: Database):
    """The engine's batch (pipelined) fails only at COMMIT: the batch rolls back, each job is
    tried alone, and each one that fails again gets that error; the others commit."""

    def handle(tx: Tx, jobs: Any) -> list[int | AuthdError]:
        _insert(tx, [(i, i, tag) for i, tag in jobs])
        return [i for i, _ in jobs]

    jobs = [(1, "one"), (2, "dup"), (3, "dup"), (4, "four")]
    answers = commit_batch(db, Many(handle), jobs)
    assert [a for a, _ in answers] == [1, 2, None, 4]
    assert [type(e) for _, e in answers] == [type(None), type(None),
                                              psycopg.errors.UniqueViolation, type(None)]
    assert _rows(db) == [(1, 1, "one"), (2, 2, "dup"), (4, 4, "four")]
