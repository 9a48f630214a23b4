"""The USB HID OTP feature: devices attached to this branch host, provisioned into the OTP
center. With the ``simulator`` backend (``[hid_otp] backend``) the devices are software, and
``authd.v1.HidSimulatorService`` offers the hands at the terminal (plug, unplug, touch)."""

from __future__ import annotations

import logging

from authd import backends
from authd.app import App
from authd.features import Feature, Service
from authd.hid_otp.attached import DeviceManager
from authd.hid_otp.service import HidService
from authd.hid_otp.servicer import HidOtpServicer, HidSimulatorServicer
from authd.hid_otp.settings import HidOtpSettings
from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc
from devices.hid_otp import Timeouts
from drivers.hid import DeviceChanges, HidapiBackend, HidBackend, HidMonitor, SimulatedHidBus

log = logging.getLogger("authd.hid_otp")


def _log_changes(changes: DeviceChanges) -> None:
    for info in changes.added:
        log.info("OTP HID device attached: %s", info.path.decode("utf-8", "replace"))
    for info in changes.removed:
        log.info("OTP HID device removed: %s", info.path.decode("utf-8", "replace"))


class HidOtpFeature(Feature[HidOtpSettings]):
    name = "hid_otp"

    def __init__(self, app: App, settings: HidOtpSettings) -> None:
        super().__init__(app, settings)
        kind = settings.backend or ("simulator" if app.config.simulators else "hidapi")
        self.bus: SimulatedHidBus | None = None
        backend: HidBackend
        if kind == "hidapi":
            backend = HidapiBackend()
        else:
            self.bus = backends.load("hid_otp.bus", kind)(settings.simulated_devices)
            backend = self.bus
        self.backend = backend
        timeouts = Timeouts(response=settings.response_timeout, touch=settings.touch_timeout)
        self.service = HidService(app, DeviceManager(backend, timeouts=timeouts),
                                  serial_prefix=settings.serial_prefix)
        self._monitor: HidMonitor | None = None

    def services(self) -> list[Service]:
        out = [Service.of(hid_otp_pb2.DESCRIPTOR, "HidOtpService",
                          hid_otp_pb2_grpc.add_HidOtpServiceServicer_to_server,
                          HidOtpServicer(self.service))]
        if self.bus is not None:
            out.append(Service.of(hid_otp_pb2.DESCRIPTOR, "HidSimulatorService",
                                  hid_otp_pb2_grpc.add_HidSimulatorServiceServicer_to_server,
                                  HidSimulatorServicer(self.service, self.bus)))
        return out

    async def start(self) -> None:
        if self.settings.monitor_interval > 0:
            monitor = HidMonitor(self.backend, interval=self.settings.monitor_interval)
            monitor.add_observer(_log_changes)
            await self.app.run_blocking(monitor.start)
            self._monitor = monitor

    async def stop(self) -> None:
        if self._monitor is not None:
            await self.app.run_blocking(self._monitor.stop)
            self._monitor = None


FEATURE = HidOtpFeature
