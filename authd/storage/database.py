"""One small database interface over SQLite (embedded default) and PostgreSQL (scale-out).

SQL is written once with ``?`` placeholders; PostgreSQL gets ``%s``. Transactions are short:
``db.run(fn)`` runs ``fn(tx)`` in one transaction and retries it on a serialization failure or a
deadlock, so callers never see a half-written state.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import logging
import math
import os
import queue
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from authd.files import create_private, private_dir, tighten
from authd.storage.deadline import Deadline, Deadlines
from devices.errors import BadRequest, Unreachable

log = logging.getLogger(__name__)

T = TypeVar("T")
Row = tuple[Any, ...]
# A statement and its parameters, to be run later (``Tx.all_of``).
Statement = tuple[str, Sequence[Any]]
Dialect = Literal["sqlite", "postgresql"]

_RETRIES = 8
WRITER_CACHE_KIB = 64 * 1024  # page cache of a writer that defers its syncs
CHECKPOINT_EVERY = 0.25  # seconds between the checkpoints of a store whose commits are deferred
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"  # the reason of every error that says the store failed
# PostgreSQL sessions of authd say who they are: the audit sealer waits for their open
# transactions (authd/audit/chain.py) and for no one else's.
APPLICATION_NAME = "authd"


class WriteHook(Protocol):
    """Work joined to every write transaction of one call (``WRITE_HOOK``): ``begin`` runs
    first in the transaction, ``committed`` after its commit."""

    def begin(self, tx: Tx) -> None: ...

    def committed(self) -> None: ...


# Set for the duration of one call (authd/idempotency.py): its write transactions carry the
# hook's rows, committed with the change or not at all.
WRITE_HOOK: contextvars.ContextVar[WriteHook | None] = contextvars.ContextVar(
    "authd_write_hook", default=None)


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

    def all_of(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """The rows of each statement, run in order. Pipelined (PostgreSQL), all of them are
        sent before the first answer is awaited: one round trip. The server still runs them
        one after another, each with a snapshot of its own (read committed), so a statement
        after a ``FOR UPDATE`` sees what the lock's previous holder committed."""
        if not self._pipelined:
            return [self.all(sql, params) for sql, params in statements]
        cursors = [self._cur.connection.cursor() for _ in statements]
        try:
            for cur, (sql, params) in zip(cursors, statements, strict=True):
                cur.execute(self._sql(sql), tuple(params))
            return [[tuple(r) for r in cur.fetchall()] for cur in cursors]
        finally:
            for cur in cursors:
                cur.close()


class Database(abc.ABC):
    """A pool of connections to one store, chosen by URL.

    With a ``timeout`` (``set_timeout``; the daemon sets ``[store] timeout_seconds`` once its
    migrations ran), a transaction that has not ended after that long is cut and answers
    ``Unreachable``; so does every failure of the store itself (unreachable, I/O error, disk
    full, damaged file), with a message saying which. Other errors (a statement refused the
    values of one change) pass unchanged."""

    dialect: Dialect

    def __init__(self) -> None:
        self.timeout: float | None = None
        self._deadlines = Deadlines(self.dialect)

    def set_timeout(self, seconds: float | None) -> None:
        """How long one transaction may take from now on (None: no limit)."""
        self.timeout = seconds

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
                if attempt < _RETRIES - 1 and self._is_retryable(exc):
                    time.sleep(delay)
                    delay = min(delay * 2, 0.1)
                    continue
                failure = self.unavailable(exc)
                if failure is not None and failure is not exc:
                    raise failure from None
                raise
        raise AssertionError("unreachable")

    @abc.abstractmethod
    def transaction(self, *, write: bool = True,
                    pipeline: bool = False) -> contextlib.AbstractContextManager[Tx]:
        """One transaction: committed when the block ends, rolled back on an exception (and
        cut, answering ``Unreachable``, when it outlives the timeout)."""

    def _is_retryable(self, exc: BaseException) -> bool:
        return False

    def is_store_failure(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the store itself failed (unreachable, I/O error, disk full,
        timed out) rather than that a statement refused the values of one change."""
        return isinstance(exc, Unreachable)

    def defer_sync_on_this_thread(self) -> bool:
        """From now on, commits made on this thread return before they reach the disk; the
        caller must call :meth:`sync` before it tells anyone a change was recorded. False (and
        nothing changes) when every commit of this store is durable when it returns."""
        return False

    def sync(self) -> None:  # noqa: B027  # nothing to do where every commit is durable
        """Make every change committed so far durable (see defer_sync_on_this_thread)."""

    def checkpoint(self) -> None:  # noqa: B027  # nothing to do where every commit is durable
        """Where commits are deferred (the writer's connection checkpoints nothing itself):
        copy the write-ahead log into the store, without blocking writers. Run every
        ``CHECKPOINT_EVERY`` off the answers' path; durability never waits for it."""

    def _describe(self, exc: BaseException) -> str:
        """What failed, in a few words (never a statement's values)."""
        return _first_line(exc)

    def unavailable(self, exc: BaseException) -> Unreachable | None:
        """``exc`` as the ``Unreachable`` a caller gets when it says the store failed."""
        if isinstance(exc, Unreachable):
            return exc
        if not self.is_store_failure(exc):
            return None
        return Unreachable(f"the store is unavailable: {self._describe(exc)}",
                           reason=STORE_UNAVAILABLE)

    def _timed_out(self, deadline: Deadline) -> Unreachable:
        return Unreachable(f"the store is unavailable: it did not answer within "
                           f"{deadline.seconds:g} s", reason=STORE_UNAVAILABLE)

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection of the pool."""

    @abc.abstractmethod
    def sibling(self) -> Database:
        """Another handle on the same store with a connection of its own, for small reads
        made while this handle's connections are busy (one per thread on SQLite; one on
        PostgreSQL)."""

    def check(self) -> str:
        """'' when the store answers a query (within the timeout), else what is wrong."""
        try:
            self.run(lambda tx: tx.one("SELECT 1"), write=False)
            return ""
        except Exception as exc:
            failure = self.unavailable(exc)
            return str(failure) if failure is not None else _first_line(exc)

    def ping(self) -> bool:
        return not self.check()


# SQLite's primary result codes that say the store failed, not one statement.
_SQLITE_FAILURES = {
    5: "the database is locked by another process",  # SQLITE_BUSY
    6: "a table is locked",  # SQLITE_LOCKED
    7: "out of memory",  # SQLITE_NOMEM
    8: "the database is read-only",  # SQLITE_READONLY
    10: "I/O error",  # SQLITE_IOERR
    11: "the database file is damaged",  # SQLITE_CORRUPT
    13: "disk full",  # SQLITE_FULL
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
    15: "locking protocol error",  # SQLITE_PROTOCOL
    26: "the file is not a SQLite database",  # SQLITE_NOTADB
}
_SQLITE_INTERRUPT = 9


class SqliteDatabase(Database):
    """SQLite in WAL mode with durable commits (synchronous=FULL); one connection per thread.

    Write transactions start with BEGIN IMMEDIATE, so they are serialized across threads and
    processes: a counter read and updated inside one is exact. Threads of this process queue on
    a lock first, so they wait for each other without SQLite's sleeping busy handler (which
    backs off in steps of up to 100 ms); other processes still meet the busy handler. An
    overdue transaction is interrupted (``sqlite3.Connection.interrupt``).

    A thread that defers its syncs (the OTP engine's writer) commits with synchronous=NORMAL:
    the commit is in the write-ahead log, safe from a killed process but not yet from a power
    loss, and ``sync`` (fdatasync of the log, which covers every commit written before it) makes
    it durable. The writer evaluates its next batch while that sync runs, and answers a batch's
    callers only after the sync that covers its commit.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if not path.parent.exists():
            private_dir(path.parent)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._sync_lock = threading.Lock()
        self._wal: tuple[int, int] | None = None  # (fd, inode) of the write-ahead log
        self._wal_path = Path(f"{path}-wal")

    def defer_sync_on_this_thread(self) -> bool:
        conn = self._conn()
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (copying the log into the database, with their own fsyncs) run in
        # ``checkpoint``, off the writer's path; its page cache holds a large working set.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        return True

    def sync(self) -> None:
        self._sync_log(self._wal_path)

    def checkpoint(self) -> None:
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _sync_log(self, wal: Path) -> None:
        with self._sync_lock:
            inode = os.stat(wal).st_ino
            if self._wal is None or self._wal[1] != inode:  # a new log: its entry too
                if self._wal is not None:
                    os.close(self._wal[0])
                    self._wal = None
                directory = os.open(wal.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
                self._wal = (os.open(wal, os.O_RDONLY | os.O_CLOEXEC), inode)
            os.fdatasync(self._wal[0])

    def sibling(self) -> Database:
        return SqliteDatabase(self.path)

    def _private_files(self) -> None:
        """The store file (and its -wal and -shm, which SQLite creates with the store file's
        mode) for this user only."""
        try:
            create_private(self.path)
        except FileExistsError:
            pass
        for suffix in ("", "-wal", "-shm"):
            tighten(Path(f"{self.path}{suffix}"))

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self._all:
                self._private_files()
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=30000")
            except sqlite3.Error as exc:
                raise self.unavailable(exc) or exc from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, *, write: bool = True, pipeline: bool = False) -> Iterator[Tx]:
        conn = self._conn()
        timeout = self.timeout
        started = time.monotonic()
        if write and not self._writer.acquire(timeout=-1 if timeout is None else timeout):
            raise Unreachable(f"the store is unavailable: no write could start within "
                              f"{timeout:g} s", reason=STORE_UNAVAILABLE)
        left = None if timeout is None else max(0.001, timeout - (time.monotonic() - started))
        try:
            with self._deadlines.watch(left, conn.interrupt) as deadline:
                cur = conn.cursor()
                try:
                    cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    hook = WRITE_HOOK.get() if write else None
                    try:
                        tx = Tx(cur, "sqlite")
                        if hook is not None:
                            hook.begin(tx)
                        yield tx
                    except BaseException:
                        if conn.in_transaction:
                            conn.rollback()
                        raise
                    else:
                        conn.commit()
                        if hook is not None:
                            hook.committed()
                except sqlite3.Error:
                    if deadline is not None and deadline.was_cut:
                        raise self._timed_out(deadline) from None
                    raise
                finally:
                    cur.close()
        finally:
            if write:
                self._writer.release()

    def _is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    @staticmethod
    def _code(exc: BaseException) -> int | None:
        code = getattr(exc, "sqlite_errorcode", None)
        return None if code is None else int(code) & 0xFF

    def is_store_failure(self, exc: BaseException) -> bool:
        code = self._code(exc)
        return (isinstance(exc, sqlite3.Error)
                and (code in _SQLITE_FAILURES or code == _SQLITE_INTERRUPT)
                ) or super().is_store_failure(exc)

    def _describe(self, exc: BaseException) -> str:
        code = self._code(exc)
        if code == _SQLITE_INTERRUPT:
            return "a transaction was interrupted"
        what = _SQLITE_FAILURES.get(code or -1, _first_line(exc))
        return f"{what} ({self.path})" if code in (11, 14, 26) else what

    def close(self) -> None:
        self._deadlines.close()
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()
        with self._sync_lock:
            if self._wal is not None:
                os.close(self._wal[0])
                self._wal = None


# A pipelined transaction's own BEGIN and COMMIT, sent as statements (``_pipelined``).
_BEGIN, _COMMIT = "BEGIN", "COMMIT"
CONNECT_TIMEOUT = 10  # seconds to reach PostgreSQL when no [store] timeout is set (libpq: >= 2)


class PostgresDatabase(Database):
    """PostgreSQL through psycopg 3: a small pool, READ COMMITTED with row locks for counters.

    With a timeout, the server cancels a statement or a lock wait that takes longer
    (``statement_timeout``, ``lock_timeout``); a server that does not answer at all (frozen,
    or a network that drops packets) has the overdue transaction's socket shut down, which
    frees its thread and drops the connection (the server rolls the transaction back)."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 8) -> None:
        import psycopg  # deferred: the embedded default never needs it

        super().__init__()
        self._psycopg = psycopg
        self.url = url
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._size = pool_size
        self._made = 0
        self._lock = threading.Lock()
        self._all: list[Any] = []
        self._applied: dict[int, float | None] = {}  # connection -> its statement timeout

    def sibling(self) -> Database:
        return PostgresDatabase(self.url, 1)

    def _connect(self) -> Any:
        timeout = self.timeout
        seconds = CONNECT_TIMEOUT if timeout is None else max(2, math.ceil(timeout))
        try:
            conn = self._psycopg.connect(self.url, autocommit=False, connect_timeout=seconds,
                                         application_name=APPLICATION_NAME)
        except self._psycopg.OperationalError as exc:
            raise Unreachable(f"the store is unavailable: cannot connect to PostgreSQL "
                              f"({_first_line(exc)})", reason=STORE_UNAVAILABLE) from None
        with self._lock:
            self._all.append(conn)
        return conn

    def _acquire(self, wait: float | None) -> Any:
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
        try:
            return self._pool.get(timeout=30 if wait is None else wait)
        except queue.Empty:
            raise Unreachable(f"the store is unavailable: no connection became free within "
                              f"{30 if wait is None else wait:g} s",
                              reason=STORE_UNAVAILABLE) from None

    def _forget(self, conn: Any) -> None:
        with self._lock:
            self._made -= 1
            if conn in self._all:
                self._all.remove(conn)
            self._applied.pop(id(conn), None)
        try:
            conn.close()
        except Exception:
            pass

    def _release(self, conn: Any) -> None:
        if conn.closed or conn.broken:
            self._forget(conn)
            return
        self._pool.put(conn)

    def _apply_timeout(self, conn: Any, cur: Any) -> None:
        """The connection's statement and lock timeouts follow ``self.timeout``."""
        timeout = self.timeout
        applied = self._applied.get(id(conn), None) if id(conn) in self._applied else "unset"
        if applied == timeout or (applied == "unset" and timeout is None):
            return  # as it is (without a timeout: the server's, the role's or the URL's)
        ms = "0" if timeout is None else str(max(1, int(timeout * 1000)))
        cur.execute("SELECT set_config('statement_timeout', %s, false), "
                    "set_config('lock_timeout', %s, false)", (ms, ms))
        conn.commit()
        self._applied[id(conn)] = timeout

    @staticmethod
    def _cut(conn: Any) -> None:
        """Shut the connection's socket down: a blocked read or write returns at once."""
        fd = conn.pgconn.socket
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()

    def _rollback(self, conn: Any) -> None:
        if conn.broken or conn.closed:
            return
        try:
            conn.rollback()
        except self._psycopg.Error:
            pass  # the connection is gone; the server rolls back on its own

    @contextmanager
    def transaction(self, *, write: bool = True, pipeline: bool = False) -> Iterator[Tx]:
        timeout = self.timeout
        started = time.monotonic()
        conn = self._acquire(timeout)
        left = None if timeout is None else max(0.001, timeout - (time.monotonic() - started))
        watched: Deadline | None = None
        try:
            # A second beyond the statement timeout: a server that answers cancels first.
            with self._deadlines.watch(None if left is None else left + 1.0,
                                       lambda: self._cut(conn)) as deadline:
                watched = deadline
                try:
                    with conn.cursor() as cur:
                        self._apply_timeout(conn, cur)
                        hook = WRITE_HOOK.get() if write else None
                        try:
                            if pipeline:
                                yield from self._pipelined(conn, cur, hook)
                            else:
                                if hook is not None:
                                    hook.begin(Tx(cur, "postgresql"))
                                yield Tx(cur, "postgresql")
                        except BaseException:
                            self._rollback(conn)
                            raise
                        else:
                            conn.commit()
                            if hook is not None:
                                hook.committed()
                except self._psycopg.Error:
                    if deadline is not None and deadline.was_cut:
                        raise self._timed_out(deadline) from None
                    raise
        finally:
            if watched is not None and watched.was_cut:
                self._forget(conn)  # its socket is shut, even if it finished meanwhile
            else:
                self._release(conn)

    def _pipelined(self, conn: Any, cur: Any, hook: WriteHook | None) -> Iterator[Tx]:
        """The body of a pipelined transaction: its BEGIN, its statements and its COMMIT go
        out in one pipeline, so a transaction that reads once waits for the server twice (the
        read, then the writes with the COMMIT) instead of four times (psycopg's own BEGIN
        waits for its answer, and so does a commit after the pipeline). The connection is in
        autocommit mode meanwhile, so psycopg sends no BEGIN or COMMIT itself; the BEGIN
        and COMMIT sent here make it one transaction all the same.

        Should any statement fail, the server skips the rest of the pipeline, the COMMIT
        too: the statement's error is raised when the pipeline is synced and the caller
        rolls the transaction back (nothing of it was written)."""
        conn.autocommit = True
        try:
            with conn.pipeline():
                cur.execute(_BEGIN, prepare=False)
                tx = Tx(cur, "postgresql", pipelined=True)
                if hook is not None:
                    hook.begin(tx)
                yield tx
                cur.execute(_COMMIT, prepare=False)  # answered by the pipeline's closing sync
        finally:
            if not (conn.closed or conn.broken):
                self._rollback(conn)  # nothing to do after the COMMIT: the connection is idle
                conn.autocommit = False

    def _is_retryable(self, exc: BaseException) -> bool:
        errors = self._psycopg.errors
        return isinstance(exc, errors.SerializationFailure | errors.DeadlockDetected)

    def is_store_failure(self, exc: BaseException) -> bool:
        if isinstance(exc, self._psycopg.errors.PipelineAborted):
            return False  # the consequence of an earlier statement's error in the pipeline
        failed = (self._psycopg.OperationalError, self._psycopg.InterfaceError)
        return isinstance(exc, failed) or super().is_store_failure(exc)

    def _describe(self, exc: BaseException) -> str:
        errors = self._psycopg.errors
        if isinstance(exc, errors.DiskFull):
            return "disk full"
        if isinstance(exc, errors.QueryCanceled | errors.LockNotAvailable):
            timeout = "" if self.timeout is None else f" within {self.timeout:g} s"
            return f"a statement or lock wait did not end{timeout}"
        return _first_line(exc)

    def close(self) -> None:
        self._deadlines.close()
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except Exception:
                    pass
            self._all.clear()
            self._applied.clear()


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
