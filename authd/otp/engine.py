"""Group commit for verifications.

A durable commit costs an fsync and a round of locking; doing one per verification caps a node
far below what it can evaluate. The engine's writer threads take whatever verifications are
waiting (up to ``batch_max``), run them one after another in a single transaction — each under
its device's row lock — and commit once. The handler must raise only before it writes (a
project error for a bad request); anything else aborts the whole batch, which then answers
every caller with UNAVAILABLE and has changed nothing. Every caller is answered only after the
commit that holds its counter change, so an acknowledged failure is never lost.

Each device (key) is served by one writer of a node, so a node evaluates one device's calls in
the order they arrived. Within a batch the items are ordered by key, so writers on several
nodes always take row locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from authd import metrics
from authd.storage import Database, Tx
from devices.errors import AuthdError, Unreachable

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


def commit_batch(db: Database, handle: Callable[[Tx, J], R],
                 jobs: Sequence[J]) -> list[tuple[R | None, AuthdError | None]]:
    """Evaluate ``jobs`` in one durable transaction: each job's result or its project error.

    Raises a project error for the whole batch when the transaction fails; then nothing of the
    batch was written."""

    def work(tx: Tx) -> list[tuple[R | None, AuthdError | None]]:
        out: list[tuple[R | None, AuthdError | None]] = []
        for job in jobs:
            try:
                out.append((handle(tx, job), None))
            except AuthdError as exc:
                out.append((None, exc))
        return out

    try:
        results = db.run(work, pipeline=True)
    except AuthdError:
        raise
    except Exception as exc:
        log.error("verification batch failed: %s", type(exc).__name__, exc_info=exc)
        raise Unreachable(
            "the store could not record the verification; nothing was counted") from None
    metrics.OTP_BATCH.observe(len(jobs))
    return results


@dataclass
class _Item(Generic[J, R]):
    job: J
    key: str
    future: Future[R] = field(default_factory=Future)


class GroupCommitEngine(Generic[J, R]):
    def __init__(self, db: Database, handle: Callable[[Tx, J], R], *, batch_max: int = 256,
                 writers: int = 1, name: str = "verify") -> None:
        self._db = db
        self._handle = handle
        self._batch_max = batch_max
        self._queues: list[queue.SimpleQueue[_Item[J, R] | None]] = [
            queue.SimpleQueue() for _ in range(writers)]
        self._closed = False
        self._threads = [threading.Thread(target=self._run, args=(q,), name=f"authd-{name}-{i}",
                                          daemon=True) for i, q in enumerate(self._queues)]
        for thread in self._threads:
            thread.start()
        self.batches = 0
        self.items = 0

    def submit(self, job: J, key: str) -> Future[R]:
        item: _Item[J, R] = _Item(job, key)
        if self._closed:
            item.future.set_exception(Unreachable("the server is shutting down"))
            return item.future
        self._queues[zlib.crc32(key.encode()) % len(self._queues)].put(item)
        return item.future

    def _take(self, q: queue.SimpleQueue[_Item[J, R] | None]) -> list[_Item[J, R]] | None:
        first = q.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self._batch_max:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                q.put(None)  # finish this batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self, q: queue.SimpleQueue[_Item[J, R] | None]) -> None:
        while True:
            batch = self._take(q)
            if batch is None:
                return
            batch.sort(key=lambda it: it.key)  # stable: one device's calls keep their order
            self._process(batch)

    def _process(self, batch: list[_Item[J, R]]) -> None:
        try:
            results = commit_batch(self._db, self._handle, [item.job for item in batch])
        except AuthdError as failure:
            for item in batch:
                item.future.set_exception(failure)
            return
        self.batches += 1
        self.items += len(batch)
        for item, (result, error) in zip(batch, results, strict=True):
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)  # type: ignore[arg-type]

    def close(self) -> None:
        """Finish what was submitted, then stop the writers."""
        self._closed = True
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()


class LoopCommitEngine(Generic[J, R]):
    """Group commit with evaluation on the event loop's own thread (SQLite, one process).

    Verifications that arrive while the loop is busy are evaluated together, on the loop, in
    one transaction; its durable commit runs on a helper thread, and while that fsync runs the
    loop serves calls and the next batch gathers. No hand-off to a writer thread per batch."""

    def __init__(self, db: Database, handle: Callable[[Tx, J], R], *,
                 batch_max: int = 256) -> None:
        self._db = db
        self._handle = handle
        self._batch_max = batch_max
        self._pending: list[tuple[J, str, asyncio.Future[R]]] = []
        self._closed = False
        self.batches = 0
        self.items = 0
        self._task: asyncio.Task[None] | None = None
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="authd-commit")

    def close(self) -> None:
        self._closed = True
        self._committer.shutdown(wait=True)

    def submit(self, job: J, key: str) -> asyncio.Future[R]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if self._closed:
            future.set_exception(Unreachable("the server is shutting down"))
            return future
        self._pending.append((job, key, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[:self._batch_max]
                self._pending = self._pending[self._batch_max:]
                batch.sort(key=lambda item: item[1])
                outcome = await self._commit(loop, [job for job, _, _ in batch])
                self._settle(batch, outcome)
        finally:
            self._task = None

    async def _commit(self, loop: asyncio.AbstractEventLoop, jobs: list[J]
                      ) -> list[tuple[R | None, AuthdError | None]] | AuthdError:
        scope = self._db.transaction(pipeline=True)
        try:
            tx = scope.__enter__()
        except Exception as exc:
            log.error("verification batch failed: %s", type(exc).__name__, exc_info=exc)
            return Unreachable("the store could not record the verification")
        results: list[tuple[R | None, AuthdError | None]] = []
        try:
            for job in jobs:
                try:
                    results.append((self._handle(tx, job), None))
                except AuthdError as exc:
                    results.append((None, exc))
        except BaseException as exc:
            scope.__exit__(type(exc), exc, exc.__traceback__)
            log.error("verification batch failed: %s", type(exc).__name__, exc_info=exc)
            return Unreachable("the store could not record the verification; nothing was "
                               "counted")
        try:
            await loop.run_in_executor(self._committer, scope.__exit__, None, None, None)
        except Exception as exc:
            log.error("verification commit failed: %s", type(exc).__name__, exc_info=exc)
            return Unreachable("the store could not record the verification; nothing was "
                               "counted")
        metrics.OTP_BATCH.observe(len(jobs))
        return results

    def _settle(self, batch: list[tuple[J, str, asyncio.Future[R]]],
                outcome: list[tuple[R | None, AuthdError | None]] | AuthdError) -> None:
        if isinstance(outcome, AuthdError):
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(outcome)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, _, future), (result, error) in zip(batch, outcome, strict=True):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]
