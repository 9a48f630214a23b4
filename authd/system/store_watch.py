"""Whether this node's store answers: every service of the node reports condition ``store``.

A center node whose PostgreSQL is gone (or whose SQLite file is unreadable) can answer nothing
of the center's state: its health goes NOT_SERVING, so that branch nodes and load balancers
move to the other nodes, and SERVING again once the store answers. The probe (``SELECT 1`` in
a read transaction) runs on its own thread, so that a store that hangs instead of refusing
counts as down after ``timeout`` seconds without holding a worker of the server.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from authd.health import HealthBoard
from authd.storage import Database

log = logging.getLogger("authd.store")

CONDITION = "store"


class StoreWatch:
    def __init__(self, db: Database, health: HealthBoard, *, interval: float,
                 timeout: float) -> None:
        self.db, self.health = db, health
        self.interval, self.timeout = interval, timeout
        self._task: asyncio.Task[None] | None = None
        self._probe: threading.Thread | None = None
        self._answer: asyncio.Future[bool] | None = None

    def _report(self, ok: bool, why: str) -> None:
        for service in self.health.services():
            self.health.report(service, CONDITION, ok, why)

    async def check(self) -> bool:
        """Probe the store once and report it; True when it answered in time."""
        loop = asyncio.get_running_loop()
        if self._probe is None or not self._probe.is_alive():
            answer: asyncio.Future[bool] = loop.create_future()

            def settle(ok: bool) -> None:
                if not answer.done():
                    answer.set_result(ok)

            def probe() -> None:
                ok = self.db.ping()
                try:
                    loop.call_soon_threadsafe(settle, ok)
                except RuntimeError:
                    pass  # the loop closed while the store was being asked

            self._answer = answer
            self._probe = threading.Thread(target=probe, name="authd-store-probe", daemon=True)
            self._probe.start()
        assert self._answer is not None
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._answer), self.timeout)
            why = "" if ok else "the store does not answer (a probe failed)"
        except TimeoutError:
            ok, why = False, f"the store did not answer within {self.timeout:g} s"
        self._report(ok, why)
        return ok

    async def start(self) -> None:
        if self.interval <= 0:
            return

        async def watch() -> None:
            while True:
                try:
                    await self.check()
                except Exception:
                    log.exception("checking the store failed")
                await asyncio.sleep(self.interval)

        self._task = asyncio.get_running_loop().create_task(watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
