"""Health of each service, as gRPC health reports it.

A service is SERVING while every condition reported for it holds (e.g. ``store`` reachable,
``writer`` running, ``pcscd`` reachable, ``center`` link up). Features and watchers report
conditions from any thread; the board forwards changes to the gRPC health servicer on the
event loop and logs each change once (not every poll). The overall status (service ``""``)
follows the conditions reported for it, and every service goes NOT_SERVING on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]

log = logging.getLogger("authd.health")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OVERALL = ""


class HealthBoard:
    def __init__(self) -> None:
        self.servicer = health_aio.HealthServicer()
        self._lock = threading.Lock()
        self._failing: dict[str, dict[str, str]] = {}  # service -> condition -> why
        self._services: set[str] = {OVERALL}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def add_service(self, name: str) -> None:
        """A service health answers for (once attached; one added later is published now)."""
        with self._lock:
            new = name not in self._services
            self._services.add(name)
        if new:
            self._schedule(name)

    async def attach(self) -> None:
        """Start publishing (called on the server's event loop once services are added)."""
        self._loop = asyncio.get_running_loop()
        with self._lock:
            services = sorted(self._services)
        for name in services:
            await self._publish(name)

    def report(self, service: str, condition: str, ok: bool, why: str = "") -> None:
        """Set one condition of ``service`` (thread-safe); a change is logged once."""
        with self._lock:
            failing = self._failing.setdefault(service, {})
            was_ok = condition not in failing
            if ok:
                failing.pop(condition, None)
            else:
                failing[condition] = why
            changed = was_ok != ok
        if changed:
            if ok:
                log.info("%s: %s is back", service or "authd", condition)
            else:
                log.warning("%s: %s failing: %s", service or "authd", condition, why or "-")
            self._schedule(service)

    def serving(self, service: str) -> bool:
        with self._lock:
            return not self._failing.get(service) and not self._closed

    def failing(self, service: str) -> dict[str, str]:
        with self._lock:
            return dict(self._failing.get(service, {}))

    def _schedule(self, service: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(self._publish(service))
        else:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._publish(service)))

    async def _publish(self, service: str) -> None:
        if self._closed:
            return
        await self.servicer.set(service, SERVING if self.serving(service) else NOT_SERVING)

    async def shutdown(self) -> None:
        self._closed = True
        await self.servicer.enter_graceful_shutdown()
