"""The smartcard feature: PC/SC readers attached to this branch host. Health follows pcscd's
reachability; without pyscard or pcscd the service answers UNAVAILABLE and says why."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from authd.app import App
from authd.customer.feature import registrations_of
from authd.features import Feature, Service
from authd.smartcard.servicer import SmartcardServicer
from authd.smartcard.settings import SmartcardSettings
from authd.v1 import smartcard_pb2, smartcard_pb2_grpc

if TYPE_CHECKING:
    from authd.smartcard.service import SmartcardService

log = logging.getLogger(__name__)

SERVICE_NAME = smartcard_pb2.DESCRIPTOR.services_by_name["SmartcardService"].full_name


class SmartcardFeature(Feature[SmartcardSettings]):
    name = "smartcard"

    def __init__(self, app: App, settings: SmartcardSettings) -> None:
        super().__init__(app, settings)
        self.service: SmartcardService | None = None
        self.why_missing = ""
        if not settings.enabled:
            self.why_missing = ("smartcard support is disabled in the configuration "
                                "([smartcard] enabled)")
        else:
            try:
                from authd.smartcard.service import SmartcardService
            except ImportError as exc:  # pyscard or its libpcsclite missing: serve the rest
                self.why_missing = f"PC/SC support is not installed ({exc.name or exc})"
            else:
                self.service = SmartcardService(settings, self._audit,
                                                lambda: registrations_of(app))
        if self.why_missing:
            log.warning("smartcards unavailable: %s", self.why_missing)

    def _audit(self, action: str, target: str, outcome: str, detail: dict[str, Any]) -> None:
        self.app.db.run(lambda tx: self.app.audit.record(
            tx, action=action, target=target, outcome=outcome, detail=detail))

    def services(self) -> list[Service]:
        return [Service(SERVICE_NAME, smartcard_pb2_grpc.add_SmartcardServiceServicer_to_server,
                        SmartcardServicer(self.app, self.service, self.why_missing))]

    def _report(self) -> None:
        service = self.service
        ok = service is not None and service.available
        self.app.health.report(SERVICE_NAME, "pcscd", ok,
                               self.why_missing or "pcscd is not reachable")

    async def start(self) -> None:
        """Watch pcscd; health is SERVING only while pcscd is reachable."""
        service = self.service
        if service is None:
            self._report()
            return

        def on_event(event: Any) -> None:
            if event.kind.value in ("service_up", "service_down"):
                self._report()

        service.monitor.subscribe(on_event)
        await self.app.run_blocking(service.start)
        self._report()

    async def stop(self) -> None:
        if self.service is not None:
            await self.app.run_blocking(self.service.close)


FEATURE = SmartcardFeature
