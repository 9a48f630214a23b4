"""HID OTP provisioning through a real gRPC channel over the simulated USB bus: the whole flow,
the customer's codes at two institutions, and failures that must leave nothing half-done."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from authd.hid_otp.feature import HidOtpFeature
from authd.v1 import (
    hid_otp_pb2,
    hid_otp_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
)
from devices.hid_otp import HidOtpSession, Slot, hmac_sha1_config, hotp_config
from drivers.hid import OtpHidConnection
from simulators.hid_otp import SimulatedOtpDevice, SimulatorBus

SERIAL = 12_345_678
OTP_SERIAL = "HID-0012345678"
CUSTOMER = "C-4711"  # bank-a's reference of the customer receiving the device


class Terminal:
    """A branch terminal of ``institution`` talking to one authd, plus backends."""

    def __init__(self, srv: Any, institution: str = "bank-a") -> None:
        self.srv = srv
        self.institution = institution
        branch = srv.channel(institution, "branch", "teller-1")
        self.hid = hid_otp_pb2_grpc.HidOtpServiceStub(branch)
        self.sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(branch)
        self.otp = otp_pb2_grpc.OtpServiceStub(branch)
        self.system = system_pb2_grpc.SystemServiceStub(srv.channel(institution, "admin", "ops"))
        self.bus: SimulatorBus = srv.app.require(HidOtpFeature).bus

    def backend(self, institution: str) -> otp_pb2_grpc.OtpServiceStub:
        return otp_pb2_grpc.OtpServiceStub(self.srv.channel(institution, "backend", "ib-1"))

    def branch_of(self, institution: str) -> otp_pb2_grpc.OtpServiceStub:
        return otp_pb2_grpc.OtpServiceStub(self.srv.channel(institution, "branch", "teller-9"))

    def plug(self, serial: int = SERIAL, **options: Any) -> SimulatedOtpDevice:
        device = SimulatedOtpDevice(serial=serial, **options)
        self.bus.plug(device)
        return device

    def press(self, serial: int = SERIAL) -> str:
        return str(self.sim.PressButton(hid_otp_pb2.PressSimulatedHidButtonRequest(
            device_serial=serial)).typed)

    def provision(self, serial: int = SERIAL,
                  **fields: Any) -> hid_otp_pb2.ProvisionHidDeviceResponse:
        fields.setdefault("customer_id", CUSTOMER)
        return self.hid.ProvisionDevice(hid_otp_pb2.ProvisionHidDeviceRequest(
            device_serial=serial, operator_id="T-0042", **fields))

    def enrolled(self, otp_serial: str = OTP_SERIAL) -> bool:
        try:
            self.otp.GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial))
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
            return False
        return True

    def provisioned_rows(self) -> int:
        return int(self.srv.app.db.run(
            lambda tx: tx.one("SELECT COUNT(*) FROM hid_devices")[0], write=False))

    def audit(self, target: str = OTP_SERIAL) -> list[tuple[str, str, dict[str, Any]]]:
        entries = self.system.ListAudit(system_pb2.ListAuditRequest(target=target)).entries
        return [(e.action, e.outcome, json.loads(e.detail_json)) for e in entries]


@pytest.fixture
def terminal(server: Callable[..., Any]) -> Terminal:
    return Terminal(server(hid_otp={"monitor_interval": 0}))


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def direct_session(terminal: Terminal, device: SimulatedOtpDevice) -> HidOtpSession:
    path = terminal.bus.path_of(device)
    assert path is not None
    return HidOtpSession(OtpHidConnection.open(terminal.bus, path))


# --------------------------------------------------------------------------- the flow


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_provision_then_codes_verify_at_two_institutions(
    server: Callable[..., Any], request: pytest.FixtureRequest, store: str
) -> None:
    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    t = Terminal(server(store_url=store_url, hid_otp={"monitor_interval": 0}))
    device = t.plug()
    listed = t.hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices
    assert [(d.device_serial, d.provisioned, d.firmware) for d in listed] == [
        (SERIAL, False, "5.4.3")]

    result = t.provision()
    assert result.otp_serial == OTP_SERIAL and result.institution == "bank-a"
    assert result.customer_id == CUSTOMER
    assert result.digits == 6 and result.identification
    assert device.slots[1] is not None and device.slots[1].is_oath_hotp
    assert device.slots[2] is not None and device.slots[2].is_chal_hmac
    assert device.slots[1].access_code != bytes(6)  # protected against reprogramming

    listed = t.hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices
    assert listed[0].provisioned and listed[0].otp_serial == OTP_SERIAL
    assert listed[0].slot1_configured and listed[0].slot2_configured

    # Bank B's branch registers the same device; the customer presses it twice.
    t.branch_of("bank-b").Register(otp_pb2.RegisterRequest(customer_id="B-9",
                                                           serial=OTP_SERIAL, operator_id="T-7"))
    # Each bank's registration names its own customer, seen by that bank only.
    for bank, customer in (("bank-a", CUSTOMER), ("bank-b", "B-9")):
        seen = t.backend(bank).GetStatus(otp_pb2.GetStatusRequest(serial=OTP_SERIAL))
        assert [(r.institution, r.customer_id) for r in seen.registrations] == [(bank, customer)]
    first, second = t.press(), t.press()
    assert len(first) == 6 and first.isdigit() and first != second
    accepted = otp_pb2.VERIFY_OUTCOME_ACCEPTED
    verify_a = t.backend("bank-a").Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=first))
    verify_b = t.backend("bank-b").Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=second))
    assert (verify_a.outcome, verify_b.outcome) == (accepted, accepted)
    replay = t.backend("bank-b").Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=first))
    assert replay.outcome != accepted
    not_registered = t.backend("bank-c").Verify(
        otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=t.press()))
    assert not_registered.outcome == otp_pb2.VERIFY_OUTCOME_NOT_REGISTERED

    identified = t.hid.IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert identified.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_IDENTIFIED
    assert identified.otp_serial == OTP_SERIAL and identified.institution == "bank-a"

    actions = [(action, outcome) for action, outcome, _ in t.audit()]
    assert ("hid.provision", "ok") in actions and ("hid.identify", "identified") in actions
    seed = device.slots[1].secret20
    trail = json.dumps([detail for _, _, detail in t.audit()])
    assert seed.hex() not in trail and base64.b32encode(seed).decode()[:16] not in trail


def test_eight_digit_device_without_identification(terminal: Terminal) -> None:
    device = terminal.plug()
    result = terminal.provision(digits=8, without_identification=True)
    assert result.digits == 8 and not result.identification
    assert device.slots[2] is None
    code = terminal.press()
    assert len(code) == 8
    verdict = terminal.backend("bank-a").Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=code))
    assert verdict.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED
    identified = terminal.hid.IdentifyDevice(
        hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert identified.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY


def test_several_devices_on_one_terminal(terminal: Terminal) -> None:
    serials = [30_000_001, 30_000_002, 30_000_003]
    for serial in serials:
        terminal.plug(serial)
    errors: list[BaseException] = []

    def provision(serial: int) -> None:
        try:
            terminal.provision(serial)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=provision, args=(s,)) for s in serials]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for serial in serials:
        code = terminal.press(serial)
        verdict = terminal.backend("bank-a").Verify(
            otp_pb2.VerifyRequest(serial=f"HID-{serial:010d}", code=code))
        assert verdict.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED


# --------------------------------------------------------------------------- refusals


def test_same_device_twice_at_once_provisions_once(terminal: Terminal) -> None:
    terminal.plug()
    outcomes: list[Any] = []

    def provision() -> None:
        try:
            outcomes.append(terminal.provision().otp_serial)
        except grpc.RpcError as exc:
            outcomes.append(exc.code())

    threads = [threading.Thread(target=provision) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(map(str, outcomes)) == sorted([OTP_SERIAL, str(grpc.StatusCode.ALREADY_EXISTS)])
    assert terminal.provisioned_rows() == 1


def test_configured_slot_needs_overwrite(terminal: Terminal) -> None:
    device = terminal.plug()
    direct_session(terminal, device).put_configuration(Slot.ONE, hotp_config(bytes(range(20))))
    err = rpc_error(terminal.provision)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "slot 1" in str(err.details())
    assert not terminal.enrolled() and terminal.provisioned_rows() == 0
    assert device.slots[1] is not None and device.slots[1].key == bytes(range(16))
    terminal.provision(overwrite=True)
    assert terminal.enrolled()


def test_wrong_access_code_changes_nothing(terminal: Terminal) -> None:
    device = terminal.plug()
    session = direct_session(terminal, device)
    session.put_configuration(Slot.ONE, hotp_config(bytes(range(20)), access_code=b"abcdef"))
    before = device.slots[1]
    err = rpc_error(lambda: terminal.provision(overwrite=True))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "access code" in str(err.details())
    err = rpc_error(lambda: terminal.provision(overwrite=True, current_access_code="000000000001"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert device.slots[1] == before and device.slots[2] is None
    assert not terminal.enrolled() and terminal.provisioned_rows() == 0
    failures = [d for a, o, d in terminal.audit() if a == "hid.provision" and o == "failed"]
    assert failures and failures[0]["stage"] == "program"
    terminal.provision(overwrite=True, current_access_code=b"abcdef".hex())
    assert terminal.enrolled()


def test_already_provisioned_device(terminal: Terminal) -> None:
    terminal.plug()
    terminal.provision()
    err = rpc_error(lambda: terminal.provision(overwrite=True))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert OTP_SERIAL in str(err.details())


def test_a_taken_otp_serial_is_refused_before_the_device_is_touched(terminal: Terminal) -> None:
    device = terminal.plug()
    # The OTP serial is taken in the center already: the reservation is refused.
    terminal.otp.Enroll(otp_pb2.EnrollRequest(customer_id="C-1",
        serial=OTP_SERIAL, parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_HOTP),
        operator_id="T-1"))
    err = rpc_error(terminal.provision)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert device.slots == {1: None, 2: None} and device.pgm_seq == 0
    assert terminal.provisioned_rows() == 0
    failures = [d for a, o, d in terminal.audit() if a == "hid.provision" and o == "failed"]
    assert failures[0]["stage"] == "reserve"


def test_a_refused_confirmation_undoes_the_device(terminal: Terminal) -> None:
    device = terminal.plug()
    center = terminal.srv.app.require(HidOtpFeature).center
    confirm = center.confirm

    def taken_meanwhile(provisioning_id: str, operator: str) -> Any:
        # Another teller enrolls the serial while this device is being programmed.
        terminal.otp.Enroll(otp_pb2.EnrollRequest(
            customer_id="C-2", serial=OTP_SERIAL,
            parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_HOTP), operator_id="T-1"))
        return confirm(provisioning_id, operator)

    center.confirm = taken_meanwhile
    err = rpc_error(terminal.provision)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert device.slots == {1: None, 2: None}  # programming undone
    assert terminal.provisioned_rows() == 0
    failures = [d for a, o, d in terminal.audit() if a == "hid.provision" and o == "failed"]
    assert failures[0]["stage"] == "confirm" and failures[0]["device_restored"] is True


@pytest.mark.parametrize(
    ("operations", "status"),
    [
        (3, grpc.StatusCode.NOT_FOUND),  # while authd looks for the device
        (14, grpc.StatusCode.UNAVAILABLE),  # while slot 1 is written
        (24, grpc.StatusCode.UNAVAILABLE),  # between the two slots
        (40, grpc.StatusCode.UNAVAILABLE),  # while slot 2 is written
    ],
)
def test_device_pulled_mid_provisioning(
    terminal: Terminal, operations: int, status: grpc.StatusCode
) -> None:
    device = terminal.plug()
    device.pull_after(operations)
    err = rpc_error(terminal.provision)
    assert err.code() == status
    if status == grpc.StatusCode.UNAVAILABLE:
        assert "removed" in str(err.details())
    assert not terminal.enrolled() and terminal.provisioned_rows() == 0
    # Plugged in again, whatever the pull left behind can be overwritten (the access code is
    # derived from the serial, so leftovers stay reprogrammable).
    terminal.bus.plug(device)
    terminal.provision(overwrite=True)
    code = terminal.press()
    verdict = terminal.backend("bank-a").Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=code))
    assert verdict.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED


def test_identify_detects_a_foreign_key(terminal: Terminal) -> None:
    device = terminal.plug()
    terminal.plug(SERIAL + 1)
    terminal.provision()
    center = terminal.srv.app.require(HidOtpFeature).center
    code = center.access_code(SERIAL)
    direct_session(terminal, device).put_configuration(
        Slot.TWO, hmac_sha1_config(bytes(20), access_code=code), access_code=code)
    result = terminal.hid.IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert result.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_MISMATCH
    other = terminal.hid.IdentifyDevice(
        hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL + 1))
    assert other.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_NOT_PROVISIONED
    assert ("hid.identify", "mismatch") in [(a, o) for a, o, _ in terminal.audit()]


def test_bad_requests_and_roles(terminal: Terminal) -> None:
    terminal.plug()
    cases = [
        (lambda: terminal.provision(0), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(digits=7), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(current_access_code="xyz"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(current_access_code="0102"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(99_999_999), grpc.StatusCode.NOT_FOUND),
        (lambda: terminal.hid.ProvisionDevice(hid_otp_pb2.ProvisionHidDeviceRequest(
            device_serial=SERIAL)), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(customer_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.provision(customer_id="C 1"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: terminal.press(99_999_999), grpc.StatusCode.NOT_FOUND),
    ]
    for call, code in cases:
        assert rpc_error(call).code() == code
    backend_hid = hid_otp_pb2_grpc.HidOtpServiceStub(
        terminal.srv.channel("bank-a", "backend", "ib"))
    err = rpc_error(lambda: backend_hid.ProvisionDevice(
        hid_otp_pb2.ProvisionHidDeviceRequest(device_serial=SERIAL, operator_id="x")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not terminal.enrolled() and terminal.provisioned_rows() == 0


def test_simulator_service_plugs_and_unplugs(terminal: Terminal) -> None:
    plugged = terminal.sim.PlugDevice(hid_otp_pb2.PlugSimulatedHidDeviceRequest(
        firmware="4.3.7", processing_delay_ms=5))
    listed = terminal.hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices
    assert [(d.device_serial, d.firmware) for d in listed] == [(plugged.device_serial, "4.3.7")]
    terminal.sim.UnplugDevice(hid_otp_pb2.UnplugSimulatedHidDeviceRequest(
        device_serial=plugged.device_serial))
    assert not terminal.hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices
    err = rpc_error(lambda: terminal.sim.PlugDevice(
        hid_otp_pb2.PlugSimulatedHidDeviceRequest(firmware="five")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
