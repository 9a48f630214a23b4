"""Health follows the store: a thread pings it and reports the condition ``store``.

Every service whose calls need the store (``Feature.uses_store``) and, on a center node, the
overall status report NOT_SERVING while the store does not answer a query within its timeout,
and SERVING again once it does. The ping runs on a thread of its own, so a store that hangs
delays nothing else; each change is logged once by the health board.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from authd.health import HealthBoard
from authd.storage.database import Database

CONDITION = "store"


class StoreWatcher:
    def __init__(self, db: Database, health: HealthBoard, services: Sequence[str],
                 interval: float) -> None:
        self._db = db
        self._health = health
        self._services = list(services)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """Ping the store once and report what was found; whether it answered."""
        why = self._db.check()
        for service in self._services:
            self._health.report(service, CONDITION, not why, why)
        return not why

    def start(self) -> None:
        if not self._services:
            return
        self._thread = threading.Thread(target=self._run, daemon=True, name="authd-store-watch")
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.check()
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._db.timeout + 5 if self._db.timeout else 30)
