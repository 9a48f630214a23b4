"""Registers ``authd.v1.SmartcardService``; health follows pcscd's reachability."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from authd.app import App
from authd.smartcard.servicer import SmartcardServicer
from authd.v1 import smartcard_pb2, smartcard_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = smartcard_pb2.DESCRIPTOR.services_by_name["SmartcardService"].full_name
_KEY = "smartcard"


def register(server: grpc.aio.Server, app: App) -> list[str]:
    section = app.config.section("smartcard")
    service: Any = None
    why = ""
    if not section.get("enabled", True):
        why = "smartcard support is disabled in the configuration ([smartcard] enabled)"
    else:
        try:
            from authd.smartcard.service import SmartcardService, SmartcardSettings
        except ImportError as exc:  # pyscard or its libpcsclite missing: keep serving the rest
            why = f"PC/SC support is not installed ({exc.name or exc})"
        else:
            settings = SmartcardSettings.from_section(section)

            def audit(action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
                app.db.run(
                    lambda tx: app.audit.record(
                        tx, action=action, target=target, outcome=outcome, detail=detail
                    )
                )

            service = SmartcardService(settings, audit)
            app.services[_KEY] = service
    if why:
        log.warning("smartcards unavailable: %s", why)
    smartcard_pb2_grpc.add_SmartcardServiceServicer_to_server(
        SmartcardServicer(app, service, why), server
    )
    return [SERVICE_NAME]


async def start(app: App, running: Any) -> None:
    """Start watching pcscd; health is SERVING only while pcscd is reachable."""
    service = app.services.get(_KEY)
    health = running.health
    if service is None:
        await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
        return
    loop = asyncio.get_running_loop()

    async def update() -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if service.available
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await health.set(SERVICE_NAME, status)

    def on_event(event: Any) -> None:
        if event.kind.value in ("service_up", "service_down"):
            loop.call_soon_threadsafe(lambda: loop.create_task(update()))

    service.monitor.subscribe(on_event)
    await loop.run_in_executor(None, service.start)
    await update()


async def close(app: App) -> None:
    service = app.services.pop(_KEY, None)
    if service is not None:
        await asyncio.get_running_loop().run_in_executor(None, service.close)
