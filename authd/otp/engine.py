"""Group commit for verifications.

A durable commit costs an fsync; doing one per verification caps a node at a few hundred per
second. The engine's writer threads take whatever verifications are waiting (up to
``batch_max``), run them one after another in a single transaction — each under its device's
row lock and in its own savepoint — and commit once. Every caller is answered only after the
commit that holds its counter change, so an acknowledged failure is never lost.

Within a batch the items are ordered by serial, so writers on several nodes always take row
locks in the same order and cannot deadlock each other.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from authd.storage import Database, Tx
from devices.errors import AuthdError, Unavailable

log = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")


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
        self._queue: queue.SimpleQueue[_Item[J, R] | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, name=f"authd-{name}-{i}",
                                          daemon=True) for i in range(writers)]
        for thread in self._threads:
            thread.start()
        self.batches = 0
        self.items = 0

    def submit(self, job: J, key: str) -> Future[R]:
        item: _Item[J, R] = _Item(job, key)
        if self._closed:
            item.future.set_exception(Unavailable("the server is shutting down"))
            return item.future
        self._queue.put(item)
        return item.future

    def _take(self) -> list[_Item[J, R]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self._batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # let this thread finish the batch, then stop
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            batch.sort(key=lambda it: it.key)  # stable: one device's calls keep their order
            self._process(batch)

    def _process(self, batch: list[_Item[J, R]]) -> None:
        def work(tx: Tx) -> list[tuple[_Item[J, R], R | None, BaseException | None]]:
            out: list[tuple[_Item[J, R], R | None, BaseException | None]] = []
            for item in batch:
                try:
                    with tx.savepoint():
                        out.append((item, self._handle(tx, item.job), None))
                except AuthdError as exc:
                    out.append((item, None, exc))
            return out

        try:
            results = self._db.run(work)
        except Exception as exc:
            log.error("verification batch failed: %s", type(exc).__name__, exc_info=exc)
            failure = exc if isinstance(exc, AuthdError) else Unavailable(
                "the store could not record the verification; nothing was counted")
            for item in batch:
                item.future.set_exception(failure)
            return
        self.batches += 1
        self.items += len(batch)
        for item, result, error in results:
            if error is not None:
                item.future.set_exception(error)
            else:
                item.future.set_result(result)  # type: ignore[arg-type]

    def close(self) -> None:
        """Finish what was submitted, then stop the writers."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
