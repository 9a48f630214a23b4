"""The security-card feature: cards and challenges at the center, and the devices cards are
printed and embossed on. An embosser or printer set to ``"simulator"`` is a simulated device
started in process (the ``security_card.device`` backend named ``simulator``)."""

from __future__ import annotations

import logging
from typing import Protocol

from authd import backends
from authd.app import App
from authd.features import Feature, Service
from authd.security_card.output import CardOutput
from authd.security_card.service import SecurityCardService
from authd.security_card.servicer import SecurityCardServicer
from authd.security_card.settings import SECTION, SIMULATOR, SecurityCardSettings
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from devices.errors import BadRequest
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
        try:
            braille: BrailleCardLayout | None = BrailleCardLayout(
                LiblouisTranslator(settings.braille_table))
        except DriverError as exc:
            log.warning("security cards: braille unavailable (%s)", exc)
            braille = None
        try:
            output = CardOutput(self._device_url(settings.embosser, "embosser"),
                                self._device_url(settings.printer, "printer"),
                                settings.device_timeout_seconds)
        except BaseException:
            self._stop_simulated()
            raise
        self.service = SecurityCardService(app.db, app.secrets, app.audit, settings, braille,
                                           output)

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
        return [Service.of(pb.DESCRIPTOR, "SecurityCardService",
                           pb_grpc.add_SecurityCardServiceServicer_to_server,
                           SecurityCardServicer(self.app, self.service))]

    def _stop_simulated(self) -> None:
        for device in self.simulated.values():
            device.stop()
        self.simulated.clear()

    async def stop(self) -> None:
        self._stop_simulated()


FEATURE = SecurityCardFeature
