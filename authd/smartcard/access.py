"""One thread per reader owns the reader's exclusive card connection and runs its card work.

A call hands its work to the reader's thread and awaits the answer: a `queue.SimpleQueue` put
and one `call_soon_threadsafe` back to the event loop, nothing else (no executor work item, no
concurrent future chained to an asyncio future, no lock around the card: the thread is the
serialization). The connection stays open between calls, so a burst of APDUs pays the PC/SC
connect once, and is released (with a card reset, so no PIN-verified state stays behind) when
the reader's thread has been idle for `idle_seconds`, when the card is removed, and on any
driver error, so that other applications (OpenSC, a card printer) can use the card in between.

A caller that has no event loop to keep free (the native front end's call link) may instead run
its work at once on its own thread (`try_now`) when nothing is queued or running for the reader
and the reader's recent APDUs were fast: the hop to the reader's thread and back costs more
than a virtual or fast card's APDU. The reader's thread and such a caller never use the
connection at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from devices.errors import Unreachable
from drivers.errors import DriverError
from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.errors import CardResetError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    work: Callable[[PcscConnection], Any]
    context: contextvars.Context
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None
    then: Callable[[Any, BaseException | None], None] | None = None  # no loop: called here
    units: int = 1  # how many APDUs (or like steps) the work sends: its time is per unit


_RELEASE = "release"
_AVERAGE_WEIGHT = 0.2  # of the newest call in the moving average of a call's time
_STOP = "stop"
_Message = _Job | str


class _ReaderThread:
    """Runs the jobs of one reader in order on its own connection."""

    def __init__(self, reader: str, idle_seconds: float,
                 reclaim: Callable[[str], None] | None = None) -> None:
        self.reader = reader
        self.idle_seconds = idle_seconds
        self._reclaim = reclaim  # before connecting on this thread: a lent card back first
        self.inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._connection: PcscConnection | None = None
        self._state = threading.Condition(threading.Lock())  # not reentrant: cheaper
        self._queued = 0  # jobs put in the inbox and not yet finished
        self._busy = False  # the connection is in use (this thread or a `try_now` caller)
        self._last_used = time.monotonic()
        self.unit_seconds: float | None = None  # moving average per APDU; None: none yet
        self.thread = threading.Thread(target=self._loop, name=f"card-{reader[:40]}", daemon=True)
        self.thread.start()

    def put(self, job: _Job) -> None:
        with self._state:
            self._queued += 1
        self.inbox.put(job)

    def _loop(self) -> None:
        while True:
            # With no connection open it still looks every idle_seconds: a `try_now` caller may
            # have opened one meanwhile, and it is released idle_seconds after its last use.
            timeout = self.idle_seconds
            if self._connection is not None:
                timeout = max(0.0, self._last_used + self.idle_seconds - time.monotonic())
            try:
                message = self.inbox.get(timeout=timeout)
            except queue.Empty:
                with self._claimed():
                    if (self._connection is not None
                            and time.monotonic() - self._last_used >= self.idle_seconds):
                        self._drop()  # idle: let other applications have the card
                continue
            with self._claimed(job=isinstance(message, _Job)):
                if message == _STOP:
                    self._drop()
                    return
                if message == _RELEASE:
                    self._drop()
                    continue
                assert isinstance(message, _Job)
                self._run(message)

    @contextlib.contextmanager
    def _claimed(self, job: bool = False) -> Iterator[None]:
        """The connection for this thread alone (waiting for a `try_now` caller to finish)."""
        with self._state:
            while self._busy:
                self._state.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._state:
                self._busy = False
                self._queued -= job
                self._state.notify_all()

    def try_now(self, work: Callable[[PcscConnection], Any],
                then: Callable[[Any, BaseException | None], None], units: int,
                fast_seconds: float) -> bool:
        """Runs ``work`` on this caller's thread (in its context: no copy, no job) and answers
        ``then``, if the reader is idle (nothing queued or running) and the work should take
        less than ``fast_seconds`` (its APDUs at the reader's recent time per APDU); False:
        nothing was done."""
        with self._state:
            seconds = self.unit_seconds
            if (self._busy or self._queued or seconds is None
                    or seconds * units >= fast_seconds):
                return False
            self._busy = True
        try:
            started = time.monotonic()
            try:
                result = self._with_connection(work)
            except BaseException as exc:  # delivered to the caller
                self._measured(started, units)
                _answer(then, None, exc)
            else:
                self._measured(started, units)
                _answer(then, result, None)
        finally:
            with self._state:
                self._busy = False
                self._state.notify_all()
        return True

    def _run(self, job: _Job) -> None:
        if job.future is not None and job.future.cancelled():  # the caller gave up before
            return  # its turn: nothing was sent
        started = time.monotonic()
        try:
            result = job.context.run(self._with_connection, job.work)
        except BaseException as exc:  # delivered to the caller; the thread goes on
            self._measured(started, job.units)
            _deliver(job, None, exc)
        else:
            self._measured(started, job.units)
            _deliver(job, result, None)

    def _measured(self, started: float, units: int) -> None:
        self._last_used = now = time.monotonic()
        took = (now - started) / max(1, units)
        seconds = self.unit_seconds
        self.unit_seconds = took if seconds is None else (
            seconds + _AVERAGE_WEIGHT * (took - seconds))

    def _with_connection(self, work: Callable[[PcscConnection], T]) -> T:
        for attempt in (1, 2):
            if self._connection is None or self._connection.closed:
                if self._reclaim is not None and threading.current_thread() is self.thread:
                    self._reclaim(self.reader)
                self._connection = PcscConnection(self.reader)
            try:
                return work(self._connection)
            except CardResetError:
                self._drop()
                if attempt == 2:
                    raise
                # another application reset the card: reconnect once
            except DriverError:
                self._drop()
                raise
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close(reset=True)  # leave no PIN-verified state behind
            except DriverError:
                pass


def _answer(then: Callable[[Any, BaseException | None], None], result: Any,
            error: BaseException | None) -> None:
    try:
        then(result, error)
    except Exception:
        log.exception("a card call's answer failed")


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    if job.then is not None:
        _answer(job.then, result, error)
        return
    assert job.loop is not None and job.future is not None
    future = job.future

    def settle() -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # the event loop is closed: nobody waits any more
        pass


class CardAccess:
    """`await access.run(reader, work)`: `work(connection)` on the reader's own thread."""

    def __init__(self, idle_seconds: float = 2.0,
                 reclaim: Callable[[str], None] | None = None) -> None:
        """``reclaim(reader)``: called on a reader's thread before it connects to the card
        (a card lent to the front end is taken back first, authd/smartcard/lending.py)."""
        self.idle_seconds = idle_seconds
        self.reclaim = reclaim
        self._lock = threading.Lock()
        self._readers: dict[str, _ReaderThread] = {}
        self._closed = False

    def _thread(self, reader: str) -> _ReaderThread:
        with self._lock:
            if self._closed:
                raise Unreachable("the smartcard service is shutting down")
            worker = self._readers.get(reader)
            if worker is None:
                worker = self._readers[reader] = _ReaderThread(reader, self.idle_seconds,
                                                               self.reclaim)
            return worker

    async def run(self, reader: str, work: Callable[[PcscConnection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._thread(reader).put(_Job(work, contextvars.copy_context(), loop, future))
        return await future

    def submit(self, reader: str, work: Callable[[PcscConnection], T],
               then: Callable[[T | None, BaseException | None], None],
               now_if_faster_than: float = 0.0, units: int = 1) -> None:
        """``work(connection)`` on the reader's own thread, which then calls
        ``then(result, error)`` (for callers without an event loop). With
        ``now_if_faster_than`` (seconds), the work runs on this thread instead, then answered
        here, when the reader is idle and its ``units`` APDUs should take less than that at
        the reader's recent time per APDU."""
        worker = self._thread(reader)
        units = max(1, units)
        if now_if_faster_than > 0 and worker.try_now(work, then, units, now_if_faster_than):
            return
        worker.put(_Job(work, contextvars.copy_context(), None, None,  # type: ignore[arg-type]
                        then, units))

    def on_reader_thread(self) -> bool:
        """This thread is one of the readers' own."""
        with self._lock:
            return any(w.thread is threading.current_thread() for w in self._readers.values())

    def release(self, reader: str) -> None:
        """Close the reader's connection after the work already queued (card removed)."""
        with self._lock:
            worker = self._readers.get(reader)
        if worker is not None:
            worker.inbox.put(_RELEASE)

    def forget(self, reader: str) -> None:
        """The reader is gone: its thread finishes the queued work, closes and ends."""
        with self._lock:
            worker = self._readers.pop(reader, None)
        if worker is not None:
            worker.inbox.put(_STOP)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._readers = list(self._readers.values()), {}
        for worker in workers:
            worker.inbox.put(_STOP)
        for worker in workers:
            worker.thread.join(timeout=10)
