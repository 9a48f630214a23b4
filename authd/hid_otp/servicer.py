"""``authd.v1.HidOtpService``, ``authd.v1.HidOtpCenterService`` and
``authd.v1.HidSimulatorService``: thin gRPC adapters."""

from __future__ import annotations

import functools
import secrets as pysecrets

import grpc

from authd.app import App
from authd.context import Role, require_role
from authd.hid_otp import convert
from authd.hid_otp.center import LocalHidCenter
from authd.hid_otp.service import HidService
from authd.v1 import hid_otp_pb2, hid_otp_pb2_grpc
from devices.errors import AlreadyPresent, BadRequest, NoSuchObject
from devices.hid_otp import read_typed_text
from drivers.hid import OtpHidConnection, SimulatedHidBus

Ctx = grpc.aio.ServicerContext
MAX_RECORDS = 256  # devices one terminal can have attached, with room to spare


class HidOtpServicer(hid_otp_pb2_grpc.HidOtpServiceServicer):
    def __init__(self, app: App, service: HidService) -> None:
        self.service = service
        self.app = app

    async def ListDevices(
        self, request: hid_otp_pb2.ListHidDevicesRequest, context: Ctx
    ) -> hid_otp_pb2.ListHidDevicesResponse:
        require_role(Role.BRANCH)
        listing = await self.app.run_blocking(self.service.list_devices)
        return hid_otp_pb2.ListHidDevicesResponse(
            devices=[convert.device_view(v) for v in listing.devices],
            from_branch_copy=listing.from_copy, center_error=listing.center_error)

    async def ProvisionDevice(
        self, request: hid_otp_pb2.ProvisionHidDeviceRequest, context: Ctx
    ) -> hid_otp_pb2.ProvisionHidDeviceResponse:
        require_role(Role.BRANCH)
        req = convert.provision_request(request)
        result = await self.app.run_blocking(self.service.provision, req)
        return convert.provisioned(result)

    async def IdentifyDevice(
        self, request: hid_otp_pb2.IdentifyHidDeviceRequest, context: Ctx
    ) -> hid_otp_pb2.IdentifyHidDeviceResponse:
        require_role(Role.BRANCH)
        serial = convert.device_serial(request.device_serial)
        result = await self.app.run_blocking(self.service.identify, serial)
        return convert.identification(result)


class HidOtpCenterServicer(hid_otp_pb2_grpc.HidOtpCenterServiceServicer):
    """The center's side of provisioning for branch nodes (their certificate is the caller)."""

    def __init__(self, app: App, center: LocalHidCenter) -> None:
        self.app = app
        self.center = center

    async def ReserveProvisioning(
        self, request: hid_otp_pb2.ReserveHidProvisioningRequest, context: Ctx
    ) -> hid_otp_pb2.HidProvisioningReservation:
        require_role(Role.BRANCH)
        reserved = await self.app.run_blocking(self.center.reserve,
                                               convert.reserve_request(request))
        return convert.reservation(reserved)

    async def ConfirmProvisioning(
        self, request: hid_otp_pb2.ConfirmHidProvisioningRequest, context: Ctx
    ) -> hid_otp_pb2.HidProvisioningRecord:
        caller = require_role(Role.BRANCH)
        record = await self.app.run_blocking(self.center.confirm, request.provisioning_id,
                                             caller.operator)
        return convert.record(record)

    async def CancelProvisioning(
        self, request: hid_otp_pb2.CancelHidProvisioningRequest, context: Ctx
    ) -> hid_otp_pb2.CancelHidProvisioningResponse:
        caller = require_role(Role.BRANCH)
        await self.app.run_blocking(functools.partial(
            self.center.cancel, request.provisioning_id, caller.operator, stage=request.stage,
            error=request.error, restored=request.device_restored))
        return hid_otp_pb2.CancelHidProvisioningResponse()

    async def GetProvisioningRecords(
        self, request: hid_otp_pb2.GetHidProvisioningRecordsRequest, context: Ctx
    ) -> hid_otp_pb2.GetHidProvisioningRecordsResponse:
        require_role(Role.BRANCH)
        if len(request.device_serials) > MAX_RECORDS:
            raise BadRequest(f"at most {MAX_RECORDS} device serials", field="device_serials")
        serials = [convert.device_serial(s) for s in request.device_serials]
        found = await self.app.run_blocking(self.center.records, serials)
        return hid_otp_pb2.GetHidProvisioningRecordsResponse(
            records=[convert.record(r) for r in found.values()])

    async def CheckIdentification(
        self, request: hid_otp_pb2.CheckHidIdentificationRequest, context: Ctx
    ) -> hid_otp_pb2.CheckHidIdentificationResponse:
        require_role(Role.BRANCH)
        serial = convert.device_serial(request.device_serial)
        outcome, record = await self.app.run_blocking(
            self.center.check_identification, serial, request.challenge, request.response)
        answer = hid_otp_pb2.CheckHidIdentificationResponse(
            outcome=convert.IDENTIFY_OUTCOME.to_pb(outcome))
        if record is not None:
            answer.record.CopyFrom(convert.record(record))
        return answer


def parse_firmware(text: str) -> tuple[int, int, int]:
    if not text:
        return (5, 4, 3)
    try:
        major, minor, build = (int(part) for part in text.split("."))
    except ValueError:
        raise BadRequest("firmware must look like 5.4.3") from None
    if not all(0 <= v <= 255 for v in (major, minor, build)):
        raise BadRequest("firmware parts must be 0..255")
    return (major, minor, build)


class HidSimulatorServicer(hid_otp_pb2_grpc.HidSimulatorServiceServicer):
    """Hands at the terminal for tests and the demo: plug, unplug, press the button."""

    def __init__(self, app: App, bus: SimulatedHidBus) -> None:
        self.app = app
        self.bus = bus

    def _path(self, serial: int) -> bytes:
        path = self.bus.path_of_serial(convert.device_serial(serial))
        if path is None:
            raise NoSuchObject(f"no simulated device with serial {serial} is plugged in")
        return path

    async def PlugDevice(
        self, request: hid_otp_pb2.PlugSimulatedHidDeviceRequest, context: Ctx
    ) -> hid_otp_pb2.PlugSimulatedHidDeviceResponse:
        require_role(Role.BRANCH, Role.ADMIN)
        serial = request.device_serial or 10_000_000 + pysecrets.randbelow(89_999_999)
        if request.processing_delay_ms > 10_000:
            raise BadRequest("processing_delay_ms must be at most 10000")
        firmware = parse_firmware(request.firmware)
        try:
            path = self.bus.plug_new(serial, firmware, request.processing_delay_ms / 1000)
        except KeyError:
            raise AlreadyPresent(f"a simulated device with serial {serial} is plugged in") \
                from None
        return hid_otp_pb2.PlugSimulatedHidDeviceResponse(device_serial=serial, path=path.decode())

    async def UnplugDevice(
        self, request: hid_otp_pb2.UnplugSimulatedHidDeviceRequest, context: Ctx
    ) -> hid_otp_pb2.UnplugSimulatedHidDeviceResponse:
        require_role(Role.BRANCH, Role.ADMIN)
        try:
            self.bus.unplug_serial(convert.device_serial(request.device_serial))
        except KeyError:
            raise NoSuchObject(f"no simulated device with serial {request.device_serial} is "
                               "plugged in") from None
        return hid_otp_pb2.UnplugSimulatedHidDeviceResponse()

    async def PressButton(
        self, request: hid_otp_pb2.PressSimulatedHidButtonRequest, context: Ctx
    ) -> hid_otp_pb2.PressSimulatedHidButtonResponse:
        require_role(Role.BRANCH, Role.ADMIN)
        slot = request.slot or 1
        if slot not in (1, 2):
            raise BadRequest("slot must be 1 or 2")
        serial = convert.device_serial(request.device_serial)
        self._path(serial)
        typed = await self.app.run_blocking(self._press, serial, slot)
        return hid_otp_pb2.PressSimulatedHidButtonResponse(typed=typed)

    async def GetDeviceState(
        self, request: hid_otp_pb2.GetSimulatedHidDeviceStateRequest, context: Ctx
    ) -> hid_otp_pb2.GetSimulatedHidDeviceStateResponse:
        require_role(Role.BRANCH, Role.ADMIN)
        try:
            processing = self.bus.processing(convert.device_serial(request.device_serial))
        except KeyError:
            raise NoSuchObject(f"no simulated device with serial {request.device_serial} is "
                               "plugged in") from None
        return hid_otp_pb2.GetSimulatedHidDeviceStateResponse(processing=processing)

    def _press(self, serial: int, slot: int) -> str:
        """Press, then read the keystrokes through the real driver path, as a terminal would."""
        connection = OtpHidConnection.open(self.bus, self._path(serial))
        try:
            while connection.read_input(1):
                pass  # keystrokes nobody read before this press
            try:
                self.bus.touch(serial, slot)
            except KeyError:
                raise NoSuchObject("the device was unplugged") from None
            return read_typed_text(connection, first_timeout_ms=200, idle_timeout_ms=50)
        finally:
            connection.close()
