"""The USB HID OTP feature, on both sides of provisioning.

- Branch role: the devices attached to this host (``authd.v1.HidOtpService``); with the
  ``simulator`` backend (``[hid_otp] backend``) the devices are software, and
  ``authd.v1.HidSimulatorService`` offers the hands at the terminal (plug, unplug, touch).
- Center role: the reservations, enrollments and provisioning records
  (``authd.v1.HidOtpCenterService`` for branch nodes), and the sweeper that expires
  reservations no branch confirmed.

A node with both roles provisions in process; a branch-only node reaches the center through its
link (``[center]``), and its HidOtpService's health follows the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from authd import backends
from authd.app import App
from authd.center.feature import CenterFeature, link_of
from authd.features import BRANCH, CENTER, Feature, Service
from authd.hid_otp.attached import DeviceManager
from authd.hid_otp.center import HidCenter, LocalHidCenter
from authd.hid_otp.copies import BranchCopies
from authd.hid_otp.remote import NoCenter, RemoteHidCenter
from authd.hid_otp.service import HidService
from authd.hid_otp.servicer import HidOtpCenterServicer, HidOtpServicer, HidSimulatorServicer
from authd.hid_otp.settings import HidOtpSettings
from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc
from devices.hid_otp import Timeouts
from drivers.hid import DeviceChanges, HidapiBackend, HidBackend, HidMonitor, SimulatedHidBus

log = logging.getLogger("authd.hid_otp")

SERVICE = hid_otp_pb2.DESCRIPTOR.services_by_name["HidOtpService"].full_name


def _log_changes(changes: DeviceChanges) -> None:
    for info in changes.added:
        log.info("OTP HID device attached: %s", info.path.decode("utf-8", "replace"))
    for info in changes.removed:
        log.info("OTP HID device removed: %s", info.path.decode("utf-8", "replace"))


class HidOtpFeature(Feature[HidOtpSettings]):
    name = "hid_otp"

    def __init__(self, app: App, settings: HidOtpSettings) -> None:
        super().__init__(app, settings)
        roles = app.config.roles
        # The center's side: on a node with the center role.
        self.center: LocalHidCenter | None = (
            LocalHidCenter(app, settings) if CENTER in roles else None)
        self.bus: SimulatedHidBus | None = None
        self.backend: HidBackend | None = None
        self.service: HidService | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._monitor: HidMonitor | None = None
        if BRANCH not in roles:
            return
        kind = settings.backend or ("simulator" if app.config.simulators else "hidapi")
        backend: HidBackend
        if kind == "hidapi":
            backend = HidapiBackend()
        else:
            self.bus = backends.load("hid_otp.bus", kind)(settings.simulated_devices)
            backend = self.bus
        self.backend = backend
        link = link_of(app)
        center: HidCenter = (self.center if self.center is not None
                             else RemoteHidCenter(link) if link is not None else NoCenter())
        timeouts = Timeouts(response=settings.response_timeout, touch=settings.touch_timeout)
        center_settings = app.require(CenterFeature).settings
        # A branch-only node keeps a copy of the center's records for listing without it.
        copies = (BranchCopies(app.db, max_age=settings.branch_copy_max_age)
                  if self.center is None else None)
        self.service = HidService(DeviceManager(backend, timeouts=timeouts), center,
                                  recovery_interval=center_settings.recovery_interval,
                                  copies=copies)

    def services(self) -> list[Service]:
        out = []
        if self.service is not None:
            out.append(Service.of(hid_otp_pb2.DESCRIPTOR, "HidOtpService",
                                  hid_otp_pb2_grpc.add_HidOtpServiceServicer_to_server,
                                  HidOtpServicer(self.app, self.service)))
            link = link_of(self.app)
            if link is not None:
                link.depend(SERVICE)
        if self.bus is not None:
            out.append(Service.of(hid_otp_pb2.DESCRIPTOR, "HidSimulatorService",
                                  hid_otp_pb2_grpc.add_HidSimulatorServiceServicer_to_server,
                                  HidSimulatorServicer(self.app, self.bus)))
        if self.center is not None:
            out.append(Service.of(hid_otp_pb2.DESCRIPTOR, "HidOtpCenterService",
                                  hid_otp_pb2_grpc.add_HidOtpCenterServiceServicer_to_server,
                                  HidOtpCenterServicer(self.app, self.center)))
        return out

    async def start(self) -> None:
        if self.center is not None:
            self._tasks.append(asyncio.ensure_future(self._every(
                self.settings.sweep_interval, "expiring HID provisioning reservations",
                self._sweep)))
        if self.service is not None and link_of(self.app) is not None:
            self._tasks.append(asyncio.ensure_future(self._every(
                self.service.recovery_interval, "settling HID provisionings",
                self.service.settle)))
        if self.service is not None and self.service.copies is not None:
            copies = self.service.copies
            await self.app.run_blocking(copies.purge)
            self._tasks.append(asyncio.ensure_future(self._every(
                min(copies.max_age, 60.0), "purging the HID branch copy", copies.purge)))
        if self.backend is not None and self.settings.monitor_interval > 0:
            monitor = HidMonitor(self.backend, interval=self.settings.monitor_interval)
            monitor.add_observer(_log_changes)
            await self.app.run_blocking(monitor.start)
            self._monitor = monitor

    async def _every(self, seconds: float, work: str, run: Callable[[], object]) -> None:
        """Run the blocking ``run()`` every ``seconds`` on a worker thread, logging failures."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.app.run_blocking(run)
            except Exception:
                log.exception("%s failed", work)

    def _sweep(self) -> None:
        assert self.center is not None
        expired = self.center.expire_overdue()
        if expired:
            log.info("expired %d HID provisioning reservation(s) no branch confirmed", expired)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._monitor is not None:
            await self.app.run_blocking(self._monitor.stop)
            self._monitor = None


FEATURE = HidOtpFeature
