"""One small database interface over SQLite (embedded default) and PostgreSQL (scale-out).

SQL is written once with ``?`` placeholders; PostgreSQL gets ``%s``. Transactions are short:
``db.run(fn)`` runs ``fn(tx)`` in one transaction and retries it on a serialization failure or a
deadlock, so callers never see a half-written state. A store that fails (unreachable, a
connection broken mid-transaction, an I/O error) raises ``Unreachable`` (UNAVAILABLE: another
node may answer), its cause in this node's log only.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

from devices.errors import BadRequest, Unreachable

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgresql"]

_RETRIES = 8
STORE_FAILED = "the store did not answer this node; try again (another node may answer)"
# PostgreSQL sessions of authd say who they are: the audit sealer waits for their open
# transactions (authd/audit/chain.py) and for no one else's.
APPLICATION_NAME = "authd"


class Tx:
    """An open transaction. Use ``?`` placeholders."""

    def __init__(self, cursor: Any, dialect: Dialect, pipelined: bool = False) -> None:
        self._cur = cursor
        self._pipelined = pipelined
        self.dialect: Dialect = dialect
        self.for_update = " FOR UPDATE" if dialect == "postgresql" else ""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed (-1 when pipelined)."""
        self._cur.execute(self._sql(sql), tuple(params))
        return -1 if self._pipelined else int(self._cur.rowcount)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested scope: its writes are undone if the block raises, the rest stays."""
        self._cur.execute("SAVEPOINT authd_sp")
        try:
            yield
        except BaseException:
            self._cur.execute("ROLLBACK TO SAVEPOINT authd_sp")
            self._cur.execute("RELEASE SAVEPOINT authd_sp")
            raise
        else:
            self._cur.execute("RELEASE SAVEPOINT authd_sp")

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self._cur.execute(self._sql(sql), tuple(params))
        row = self._cur.fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]


class Database(abc.ABC):
    """A pool of connections to one store, chosen by URL."""

    dialect: Dialect

    def run(self, fn: Callable[[Tx], T], *, write: bool = True, pipeline: bool = False) -> T:
        """Run ``fn(tx)`` in one transaction, retrying on serialization failures.

        ``pipeline``: on PostgreSQL, statements whose results are not read are sent without
        waiting for their answers (psycopg pipeline mode); ``tx.execute`` then returns -1."""
        delay = 0.002
        for attempt in range(_RETRIES):
            try:
                with self.transaction(write=write, pipeline=pipeline) as tx:
                    return fn(tx)
            except Exception as exc:
                if attempt == _RETRIES - 1 or not self._is_retryable(exc):
                    if not isinstance(exc, Unreachable) and self.is_store_failure(exc):
                        log.warning("the store failed: %s", _first_line(exc))
                        raise Unreachable(STORE_FAILED, reason="STORE_UNAVAILABLE") from exc
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        raise AssertionError("unreachable")

    @abc.abstractmethod
    def transaction(self, *, write: bool = True,
                    pipeline: bool = False) -> contextlib.AbstractContextManager[Tx]:
        """One transaction: committed when the block ends, rolled back on an exception."""

    def _is_retryable(self, exc: BaseException) -> bool:
        return False

    def is_store_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the store itself failed (unreachable, I/O error, disk full,
        timed out) rather than that a statement refused the values of one change."""
        return isinstance(exc, Unreachable)

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection of the pool."""

    def ping(self) -> bool:
        try:
            self.run(lambda tx: tx.one("SELECT 1"), write=False)
            return True
        except Exception:
            return False


class SqliteDatabase(Database):
    """SQLite in WAL mode with durable commits (synchronous=FULL); one connection per thread.

    Write transactions start with BEGIN IMMEDIATE, so they are serialized across threads and
    processes: a counter read and updated inside one is exact. Threads of this process queue on
    a lock first, so they wait for each other without SQLite's sleeping busy handler (which
    backs off in steps of up to 100 ms); other processes still meet the busy handler.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True, pipeline: bool = False) -> Iterator[Tx]:
        conn = self._conn()
        if write:
            self._writer.acquire()
        try:
            cur = conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield Tx(cur, "sqlite")
                except BaseException:
                    conn.rollback()
                    raise
                else:
                    conn.commit()
            finally:
                cur.close()
        finally:
            if write:
                self._writer.release()

    def _is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def is_store_failure(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) or super().is_store_failure(exc)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()


class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3: a small pool, READ COMMITTED with row locks for counters."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 8) -> None:
        import psycopg  # deferred: the embedded default never needs it

        self._psycopg = psycopg
        self.url = url
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._size = pool_size
        self._made = 0
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def _connect(self) -> Any:
        try:
            conn = self._psycopg.connect(self.url, autocommit=False,
                                         application_name=APPLICATION_NAME)
        except self._psycopg.OperationalError as exc:
            raise Unreachable(f"PostgreSQL store unreachable: {_first_line(exc)}") from None
        with self._lock:
            self._all.append(conn)
        return conn

    def _acquire(self) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            make = self._made < self._size
            if make:
                self._made += 1
        if make:
            try:
                return self._connect()
            except BaseException:
                with self._lock:
                    self._made -= 1
                raise
        return self._pool.get(timeout=30)

    def _release(self, conn: Any) -> None:
        if conn.closed or conn.broken:
            with self._lock:
                self._made -= 1
            return
        self._pool.put(conn)

    @contextmanager
    def transaction(self, *, write: bool = True, pipeline: bool = False) -> Iterator[Tx]:
        conn = self._acquire()
        try:
            with conn.cursor() as cur:
                try:
                    if pipeline:
                        with conn.pipeline():
                            yield Tx(cur, "postgresql", pipelined=True)
                    else:
                        yield Tx(cur, "postgresql")
                except BaseException:
                    conn.rollback()
                    raise
                else:
                    conn.commit()
        finally:
            self._release(conn)

    def _is_retryable(self, exc: BaseException) -> bool:
        errors = self._psycopg.errors
        return isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected)

    def is_store_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, self._psycopg.errors.PipelineAborted):
            return False  # the consequence of an earlier statement's error in the pipeline
        failed = (self._psycopg.OperationalError, self._psycopg.InterfaceError)
        return isinstance(exc, failed) or super().is_store_failure(exc)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:
                    pass
            self._all.clear()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # Connection errors may echo the URL; never the password, which we strip from the URL.
    return re.sub(r"password=\S+", "password=***", text[0] if text else type(exc).__name__)


def open_database(url: str, pool_size: int = 8) -> Database:
    """``sqlite:///relative/or/absolute.db`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url[len("sqlite:///"):]))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, pool_size)
    raise BadRequest(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")
