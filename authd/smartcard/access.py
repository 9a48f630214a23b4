"""One thread per reader owns the reader's exclusive card connection and runs its card work.

A call hands its work to the reader's thread and awaits the answer: a `queue.SimpleQueue` put
and one `call_soon_threadsafe` back to the event loop, nothing else (no executor work item, no
concurrent future chained to an asyncio future, no lock around the card: the thread is the
serialization). The connection stays open between calls, so a burst of APDUs pays the PC/SC
connect once, and is released (with a card reset, so no PIN-verified state stays behind) when
the reader's thread has been idle for `idle_seconds`, when the card is removed, and on any
driver error, so that other applications (OpenSC, a card printer) can use the card in between.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
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


_RELEASE = "release"
_STOP = "stop"
_Message = _Job | str


class _ReaderThread:
    """Runs the jobs of one reader in order on its own connection."""

    def __init__(self, reader: str, idle_seconds: float) -> None:
        self.reader = reader
        self.idle_seconds = idle_seconds
        self.inbox: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._connection: PcscConnection | None = None
        self.thread = threading.Thread(target=self._loop, name=f"card-{reader[:40]}", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                message = self.inbox.get(timeout=self.idle_seconds if self._connection else None)
            except queue.Empty:
                self._drop()  # idle: let other applications have the card
                continue
            if message == _STOP:
                self._drop()
                return
            if message == _RELEASE:
                self._drop()
                continue
            assert isinstance(message, _Job)
            self._run(message)

    def _run(self, job: _Job) -> None:
        if job.future is not None and job.future.cancelled():  # the caller gave up before
            return  # its turn: nothing was sent
        try:
            result = job.context.run(self._with_connection, job.work)
        except BaseException as exc:  # delivered to the caller; the thread goes on
            _deliver(job, None, exc)
        else:
            _deliver(job, result, None)

    def _with_connection(self, work: Callable[[PcscConnection], T]) -> T:
        for attempt in (1, 2):
            if self._connection is None or self._connection.closed:
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


def _deliver(job: _Job, result: Any, error: BaseException | None) -> None:
    if job.then is not None:
        try:
            job.then(result, error)
        except Exception:
            log.exception("a card call's answer failed")
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

    def __init__(self, idle_seconds: float = 2.0) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._readers: dict[str, _ReaderThread] = {}
        self._closed = False

    def _thread(self, reader: str) -> _ReaderThread:
        with self._lock:
            if self._closed:
                raise Unreachable("the smartcard service is shutting down")
            worker = self._readers.get(reader)
            if worker is None:
                worker = self._readers[reader] = _ReaderThread(reader, self.idle_seconds)
            return worker

    async def run(self, reader: str, work: Callable[[PcscConnection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._thread(reader).inbox.put(_Job(work, contextvars.copy_context(), loop, future))
        return await future

    def submit(self, reader: str, work: Callable[[PcscConnection], T],
               then: Callable[[T | None, BaseException | None], None]) -> None:
        """``work(connection)`` on the reader's own thread, which then calls
        ``then(result, error)`` (for callers without an event loop)."""
        self._thread(reader).inbox.put(
            _Job(work, contextvars.copy_context(), None, None, then))  # type: ignore[arg-type]

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
