"""Registers the HID OTP services. Settings (``[hid_otp]``):

- ``backend``: ``"simulator"`` (a simulated USB bus; the default when simulators are on) or
  ``"hidapi"`` (the host's devices);
- ``serial_prefix``: prefix of the OTP center serial (``"HID-"`` + 10 digits);
- ``response_timeout``, ``touch_timeout``: seconds (device protocol);
- ``monitor_interval``: seconds between plug/unplug scans for the log (0: off);
- ``simulated_devices``: serials of simulated devices plugged in at start.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from authd.app import App
from authd.hid_otp.attached import DeviceManager
from authd.hid_otp.service import HidService
from authd.hid_otp.servicer import HidOtpServicer, HidSimulatorServicer
from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc
from devices.errors import InvalidArgument
from devices.hid_otp import Timeouts
from drivers.hid import DeviceChanges, HidapiBackend, HidBackend, HidMonitor
from simulators.hid_otp import SimulatedOtpDevice, SimulatorBus

log = logging.getLogger("authd.hid_otp")


def _log_changes(changes: DeviceChanges) -> None:
    for info in changes.added:
        log.info("OTP HID device attached: %s", info.path.decode("utf-8", "replace"))
    for info in changes.removed:
        log.info("OTP HID device removed: %s", info.path.decode("utf-8", "replace"))


def register(server: grpc.aio.Server, app: App) -> list[str]:
    settings: dict[str, Any] = dict(app.config.section("hid_otp"))
    kind = settings.get("backend", "simulator" if app.config.simulators else "hidapi")
    backend: HidBackend
    bus: SimulatorBus | None = None
    if kind == "simulator":
        bus = SimulatorBus()
        backend = bus
        for serial in settings.get("simulated_devices", []):
            bus.plug(SimulatedOtpDevice(serial=int(serial)))
    elif kind == "hidapi":
        backend = HidapiBackend()
    else:
        raise InvalidArgument(f"[hid_otp] backend must be 'simulator' or 'hidapi', not {kind!r}")
    timeouts = Timeouts(
        response=float(settings.get("response_timeout", 2.0)),
        touch=float(settings.get("touch_timeout", 16.0)),
    )
    service = HidService(
        app, DeviceManager(backend, timeouts=timeouts),
        serial_prefix=str(settings.get("serial_prefix", "HID-")),
    )
    app.services["hid_otp"] = service
    app.services["hid_bus"] = bus
    interval = float(settings.get("monitor_interval", 1.0))
    if interval > 0:
        monitor = HidMonitor(backend, interval=interval)
        monitor.add_observer(_log_changes)
        monitor.start()
        app.services["hid_monitor"] = monitor

    hid_otp_pb2_grpc.add_HidOtpServiceServicer_to_server(HidOtpServicer(service), server)
    names = [hid_otp_pb2.DESCRIPTOR.services_by_name["HidOtpService"].full_name]
    if bus is not None:
        hid_otp_pb2_grpc.add_HidSimulatorServiceServicer_to_server(
            HidSimulatorServicer(service, bus), server
        )
        names.append(hid_otp_pb2.DESCRIPTOR.services_by_name["HidSimulatorService"].full_name)
    return names


async def close(app: App) -> None:
    monitor = app.services.pop("hid_monitor", None)
    if isinstance(monitor, HidMonitor):
        await app.run_blocking(monitor.stop)
