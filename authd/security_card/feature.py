"""Register the security-card service; start the embosser and printer simulators if asked."""

from __future__ import annotations

import logging

import grpc

from authd.app import App
from authd.security_card.output import CardOutput
from authd.security_card.service import SecurityCardService
from authd.security_card.servicer import SecurityCardServicer
from authd.security_card.settings import SECTION, SIMULATOR, SecurityCardSettings
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from devices.errors import InvalidArgument
from devices.security_card.braille import BrailleCardLayout
from drivers.braille import LiblouisTranslator
from drivers.errors import DriverError
from simulators.security_card.embosser import EmbosserSimulator

log = logging.getLogger(__name__)

SERVICE_KEY = "security_card"
EMBOSSER_SIM_KEY = "security_card.embosser_simulator"
PRINTER_SIM_KEY = "security_card.printer_simulator"


def _device_url(app: App, value: str, key: str, what: str) -> str:
    if value != SIMULATOR:
        return value
    if not app.config.simulators:
        raise InvalidArgument(f"{SECTION}.{what} = 'simulator' needs simulators = true")
    sim = EmbosserSimulator().start()
    app.services[key] = sim
    log.info("security cards: %s simulator at %s", what, sim.address)
    return sim.address


def build_service(app: App) -> SecurityCardService:
    settings = SecurityCardSettings.from_section(app.config.section(SECTION))
    try:
        braille: BrailleCardLayout | None = BrailleCardLayout(
            LiblouisTranslator(settings.braille_table))
    except DriverError as exc:
        log.warning("security cards: braille unavailable (%s)", exc)
        braille = None
    output = CardOutput(
        _device_url(app, settings.embosser, EMBOSSER_SIM_KEY, "embosser"),
        _device_url(app, settings.printer, PRINTER_SIM_KEY, "printer"),
        settings.device_timeout_seconds,
    )
    return SecurityCardService(app.db, app.secrets, app.audit, settings, braille, output)


def register(server: grpc.aio.Server, app: App) -> list[str]:
    service = build_service(app)
    app.services[SERVICE_KEY] = service
    pb_grpc.add_SecurityCardServiceServicer_to_server(SecurityCardServicer(app, service), server)
    return [pb.DESCRIPTOR.services_by_name["SecurityCardService"].full_name]


async def close(app: App) -> None:
    for key in (EMBOSSER_SIM_KEY, PRINTER_SIM_KEY):
        sim = app.services.pop(key, None)
        if sim is not None:
            sim.stop()
