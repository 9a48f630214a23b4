"""The security-card feature, on both sides of a printed card.

- Center role: cards and challenges on the store (``authd.v1.SecurityCardService``), and the
  center's half of printing for branch nodes (``authd.v1.SecurityCardCenterService``): codes
  generated and sealed here, print jobs released to the node whose device prints them.
- Branch role: the embosser and printer of this branch. On a branch-only node with a link to
  the center, ``SecurityCardService`` is served here too: issue, replace and reprint print on
  this node's devices (the job comes from the center), every other call is forwarded.

An embosser or printer set to ``"simulator"`` is a simulated device started in process (the
``security_card.device`` backend named ``simulator``).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from authd import backends
from authd.app import App
from authd.center.feature import link_of
from authd.center.forward import forwarding_service
from authd.features import CENTER, Feature, Service
from authd.security_card.desk import CardCenter, LocalCardCenter, PrintDesk
from authd.security_card.output import CardOutput
from authd.security_card.remote import RemoteCardCenter
from authd.security_card.service import SecurityCardService
from authd.security_card.servicer import SecurityCardCenterServicer, SecurityCardServicer
from authd.security_card.settings import SECTION, SIMULATOR, SecurityCardSettings
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from devices.errors import BadRequest, WrongState
from devices.security_card.braille import BrailleCardLayout
from drivers.braille import LiblouisTranslator
from drivers.errors import DriverError

log = logging.getLogger(__name__)


class SimulatedDevice(Protocol):
    """A simulated embosser or printer: where to send jobs, and how to stop it."""

    @property
    def address(self) -> str: ...

    def stop(self) -> None: ...


class SecurityCardFeature(Feature[SecurityCardSettings]):
    name = "security_card"
    uses_store = True

    def __init__(self, app: App, settings: SecurityCardSettings) -> None:
        super().__init__(app, settings)
        # Simulated output devices by role ("embosser", "printer"), when configured.
        self.simulated: dict[str, SimulatedDevice] = {}
        self.service: SecurityCardService | None = None
        self.center: LocalCardCenter | None = None
        self.desk: PrintDesk | None = None
        link = link_of(app)
        if CENTER not in app.config.roles and link is None:
            return  # a branch node without a center: no card can be issued here
        try:
            output = CardOutput(self._device_url(settings.embosser, "embosser"),
                                self._device_url(settings.printer, "printer"),
                                settings.device_timeout_seconds)
        except BaseException:
            self._stop_simulated()
            raise
        center: CardCenter
        if CENTER in app.config.roles:
            try:
                braille: BrailleCardLayout | None = BrailleCardLayout(
                    LiblouisTranslator(settings.braille_table))
            except DriverError as exc:
                log.warning("security cards: braille unavailable (%s)", exc)
                braille = None
            self.service = SecurityCardService(app.db, app.secrets, app.audit, settings,
                                               braille)
            self.center = center = LocalCardCenter(self.service)
        else:
            assert link is not None
            center = RemoteCardCenter(link)
        self.desk = PrintDesk(center, output)

    def center_service(self) -> SecurityCardService:
        """The cards on this node's store (a node with the center role)."""
        if self.service is None:
            raise WrongState("security cards are kept at the center; this branch node checks "
                             "none itself")
        return self.service

    def _device_url(self, value: str | None, role: str) -> str:
        if value is None:  # unset: the simulator where simulators are on, else none
            value = SIMULATOR if self.app.config.simulators else ""
        if value != SIMULATOR:
            return value
        if not self.app.config.simulators:
            raise BadRequest(f"[{SECTION}] {role} = 'simulator' needs simulators = true")
        device: SimulatedDevice = backends.load("security_card.device", SIMULATOR)()
        self.simulated[role] = device
        log.info("security cards: %s simulator at %s", role, device.address)
        return device.address

    def services(self) -> list[Service]:
        if self.service is not None and self.center is not None and self.desk is not None:
            return [
                Service.of(pb.DESCRIPTOR, "SecurityCardService",
                           pb_grpc.add_SecurityCardServiceServicer_to_server,
                           SecurityCardServicer(self.app, self.service, self.desk)),
                Service.of(pb.DESCRIPTOR, "SecurityCardCenterService",
                           pb_grpc.add_SecurityCardCenterServiceServicer_to_server,
                           SecurityCardCenterServicer(self.app, self.center)),
            ]
        link = link_of(self.app)
        if link is None or self.desk is None:
            return []
        desk = self.desk

        def local(method: Any) -> Any:
            async def behavior(request: Any, context: Any) -> Any:
                return await self.app.run_blocking(method, request)
            return behavior

        return [forwarding_service(link, pb.DESCRIPTOR, "SecurityCardService", local={
            "IssueCard": local(desk.issue), "ReplaceCard": local(desk.replace),
            "ReprintCard": local(desk.reprint)})]

    def _stop_simulated(self) -> None:
        for device in self.simulated.values():
            device.stop()
        self.simulated.clear()

    async def stop(self) -> None:
        self._stop_simulated()


FEATURE = SecurityCardFeature
