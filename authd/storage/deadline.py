"""Deadlines for store transactions: one that overruns is cut, so its thread comes back.

A store that stops answering (a frozen PostgreSQL, a SQLite file locked by another process)
would otherwise hold the thread of every transaction until the client's deadline, or forever.
Each transaction registers how to cut it (``interrupt()`` of a SQLite connection, a shutdown of
a PostgreSQL connection's socket); one watcher thread cuts those past their deadline. The
transaction then fails at once (the store rolls it back), its thread and connection are free,
and the caller is told the store did not answer in time.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TICK = 0.05  # how often the watcher looks (seconds)


@dataclass
class Deadline:
    seconds: float
    at: float
    cut: Callable[[], None] = field(repr=False)
    was_cut: bool = False


class Deadlines:
    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._open: dict[int, Deadline] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @contextmanager
    def watch(self, seconds: float | None, cut: Callable[[], None]) -> Iterator[Deadline | None]:
        """Cut the block's transaction with ``cut()`` if it is still open after ``seconds``
        (None: no deadline)."""
        if seconds is None:
            yield None
            return
        entry = Deadline(seconds, time.monotonic() + seconds, cut)
        key = next(self._ids)
        with self._lock:
            self._open[key] = entry
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name=f"authd-{self._name}-deadlines")
                self._thread.start()
        try:
            yield entry
        finally:
            with self._lock:
                self._open.pop(key, None)

    def _watch(self) -> None:
        while not self._stop.wait(TICK):
            now = time.monotonic()
            with self._lock:
                overdue = [e for e in self._open.values() if not e.was_cut and e.at <= now]
                for entry in overdue:
                    entry.was_cut = True
            for entry in overdue:
                try:
                    entry.cut()
                except Exception as exc:  # the connection may be gone already
                    log.debug("cutting an overdue transaction failed: %s", exc)
            if overdue:
                log.warning("%d %s transaction(s) overran their deadline and were cut",
                            len(overdue), self._name)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
