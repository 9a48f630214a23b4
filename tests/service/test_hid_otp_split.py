"""HID OTP provisioning at a branch node, with the center across the link: the seed comes
from the center once, and a link that breaks at any step leaves nothing half-done."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.hid_otp.feature import HidOtpFeature
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import hid_otp_pb2_grpc, otp_pb2, otp_pb2_grpc, system_pb2, system_pb2_grpc
from simulators.hid_otp import SimulatedOtpDevice
from tests.conftest import wait_for
from tests.split import BRANCH_DEVICES, FAST_LINK, Pki, operator, terminal_name
from tests.tcpproxy import DROP_REPLIES, TcpProxy

SERIAL = 31_000_001
OTP_SERIAL = f"HID-{SERIAL:010d}"
TTL = 3.0  # seconds a reservation waits for its confirmation


class Split:
    """A center node, a TCP proxy in front of it, and bank-a's branch node behind the proxy."""

    def __init__(self, server: Any, pki: Pki, store_url: str, proxy: TcpProxy,
                 center: Any) -> None:
        self.pki, self.proxy, self.center = pki, proxy, center
        link = pki.link("bank-a", [proxy.address], **{**FAST_LINK, "call_timeout": 3.0})
        self.branch = server(roles=["branch"], center=link, **BRANCH_DEVICES)
        teller = self.branch.channel("bank-a", "branch", "teller-07")
        self.hid = hid_otp_pb2_grpc.HidOtpServiceStub(teller)
        self.sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(teller)
        self.feature: HidOtpFeature = self.branch.app.require(HidOtpFeature)
        self.center_side = center.app.require(HidOtpFeature).center

    def plug(self, serial: int = SERIAL) -> SimulatedOtpDevice:
        device = SimulatedOtpDevice(serial=serial)
        assert self.feature.bus is not None
        self.feature.bus.plug(device)
        return device

    def provision(self, serial: int = SERIAL, **more: Any) -> H.ProvisionHidDeviceResponse:
        return self.hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
            customer_id="C-1",
            device_serial=serial, operator_id="T-0042", **more), timeout=60)

    def press(self, serial: int = SERIAL) -> str:
        return str(self.sim.PressButton(H.PressSimulatedHidButtonRequest(
            device_serial=serial), timeout=30).typed)

    def backend(self, institution: str = "bank-a") -> otp_pb2_grpc.OtpServiceStub:
        return otp_pb2_grpc.OtpServiceStub(
            self.pki.channel(self.center.address, f"{institution}-backend"))

    def enrolled(self, otp_serial: str = OTP_SERIAL) -> bool:
        ops = otp_pb2_grpc.OtpServiceStub(self.pki.channel(self.center.address, "ops"))
        try:
            ops.GetStatus(otp_pb2.GetStatusRequest(serial=otp_serial), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            return False
        return True

    def audit(self, target: str = OTP_SERIAL) -> list[system_pb2.AuditEntry]:
        ops = system_pb2_grpc.SystemServiceStub(self.pki.channel(self.center.address, "ops"))
        return list(reversed(ops.ListAudit(system_pb2.ListAuditRequest(target=target),
                                           timeout=30).entries))

    def reservations(self) -> list[str]:
        rows = self.center.app.db.run(lambda tx: tx.all(
            "SELECT state FROM hid_reservations ORDER BY created_at"), write=False)
        return [r[0] for r in rows]


@pytest.fixture
def split_factory(server: Any, tmp_path: Path) -> Iterator[Callable[..., Split]]:
    proxies: list[TcpProxy] = []

    def make(store_url: str | None = None, ttl: float = TTL) -> Split:
        pki = Pki.create(tmp_path / "pki")
        center = server(store_url=store_url or f"sqlite:///{tmp_path / 'center.db'}",
                        roles=["center"], server=pki.server_tls(),
                        security_card={"embosser": "", "printer": ""},
                        hid_otp={"reservation_seconds": ttl, "sweep_interval": 0.3})
        proxy = TcpProxy(("127.0.0.1", center.port))
        proxies.append(proxy)
        return Split(server, pki, store_url or "", proxy, center)

    yield make
    for proxy in proxies:
        proxy.close()


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def empty(device: SimulatedOtpDevice) -> bool:
    return device.slots == {1: None, 2: None}


def test_provisioned_at_a_branch_node_and_enrolled_at_the_center(
        split_factory: Callable[..., Split], store_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = split_factory(store_url)
    device = s.plug()
    result = s.provision()
    assert (result.otp_serial, result.institution, result.identification) == (
        OTP_SERIAL, "bank-a", True)
    code = s.press()
    verdict = s.backend().Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=code))
    assert verdict.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED
    listed = s.hid.ListDevices(H.ListHidDevicesRequest()).devices
    assert [(d.device_serial, d.provisioned, d.institution) for d in listed] == [
        (SERIAL, True, "bank-a")]
    ident = s.hid.IdentifyDevice(H.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert ident.outcome == H.HID_IDENTIFY_OUTCOME_IDENTIFIED

    # The center audited it with the branch node as the caller and the teller beside it.
    entries = s.audit()
    done = [e for e in entries if e.action == "hid.provision" and e.outcome == "ok"]
    assert len(done) == 1
    assert (done[0].subject, operator(done[0])) == (terminal_name("bank-a"), "T-0042")
    assert [e.action for e in entries][:2] == ["hid.reserve", "otp.enroll"]
    assert s.reservations() == ["confirmed"]

    # Nothing of the device's secrets is kept at the branch node.
    slot1, slot2 = device.slots[1], device.slots[2]
    assert slot1 is not None and slot2 is not None
    secrets = [slot1.key, slot2.key, slot1.access_code]

    def dump(tx: Any) -> list[Any]:
        names = [r[0] for r in tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [v for n in names for row in tx.all(f"SELECT * FROM {n}") for v in row]

    values = s.branch.app.db.run(dump, write=False)
    flat = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                    for v in values)
    assert not any(secret in flat or secret.hex().encode() in flat for secret in secrets)
    assert not any(secret.hex() in caplog.text for secret in secrets)


def test_center_unreachable_leaves_the_device_untouched(
        split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    device = s.plug()
    s.proxy.refuse()
    err = rpc_error(s.provision)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(err).reason == "CENTER_UNREACHABLE"
    assert "center is unreachable" in str(err.details())
    assert empty(device) and not s.enrolled() and s.reservations() == []
    health = s.branch.app.health
    assert wait_for(lambda: not health.serving("authd.v1.HidOtpService"), timeout=10)
    # Device-local work goes on: the device still types (nothing programmed: no code).
    assert s.press() == ""
    s.proxy.forward()
    assert wait_for(lambda: health.serving("authd.v1.HidOtpService"), timeout=15)
    assert s.provision().otp_serial == OTP_SERIAL


def test_link_cut_after_programming_undoes_the_device(
        split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    device = s.plug()
    service = s.feature.service
    assert service is not None
    program = service._program

    def then_cut(*args: Any) -> Any:
        done = program(*args)
        s.proxy.refuse()  # the confirmation cannot be sent
        return done

    service._program = then_cut  # type: ignore[method-assign]
    err = rpc_error(s.provision)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    # Either the link knew the confirmation was not sent (the device is undone at once), or
    # the connection broke under it and the branch cannot know (it keeps asking).
    assert empty(device) or [u.device_serial for u in service.unsettled()] == [SERIAL]
    # The reservation no one confirmed expires at the center: nothing is enrolled ...
    assert wait_for(lambda: s.reservations() == ["expired"], timeout=15)
    s.proxy.forward()
    # ... and once the center can say so, nothing is left on the device either.
    assert wait_for(lambda: service.unsettled() == [], timeout=20)
    assert empty(device) and not s.enrolled()
    assert ("hid.provision", "expired") in [(e.action, e.outcome) for e in s.audit()]
    service._program = program  # type: ignore[method-assign]
    # Once the link has found the center again (its reconnect backoff is up to 2 s):
    assert wait_for(lambda: s.branch.app.health.serving("authd.v1.HidOtpService"), timeout=15)
    assert s.provision().otp_serial == OTP_SERIAL


def _first_time(action: Callable[[], None]) -> Callable[[], None]:
    """``action`` on the first call only. The branch settles an unanswered confirmation by
    sending it again in the background: one that reaches the patched center after the test
    forwarded the answers again must not drop them again (the link would never come back)."""
    done = threading.Event()

    def once() -> None:
        if not done.is_set():
            done.set()
            action()

    return once


def test_a_lost_confirmation_answer_is_settled_when_the_link_returns(
        split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    device = s.plug()
    confirm = s.center_side.confirm

    lose = _first_time(lambda: s.proxy.set(DROP_REPLIES))

    def confirmed_then_lost(*args: Any) -> Any:
        answer = confirm(*args)  # committed at the center
        lose()  # ... and its answer never reaches the branch
        return answer

    s.center_side.confirm = confirmed_then_lost
    err = rpc_error(s.provision)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(err).reason == "PROVISIONING_UNSETTLED"
    service = s.feature.service
    assert service is not None and len(service.unsettled()) == 1
    assert not empty(device) and s.enrolled()  # kept: the center may have enrolled it
    s.center_side.confirm = confirm
    s.proxy.forward()
    assert wait_for(lambda: service.unsettled() == [], timeout=20)
    assert not empty(device) and s.reservations() == ["confirmed"]
    listed = s.hid.ListDevices(H.ListHidDevicesRequest()).devices
    assert listed[0].provisioned and listed[0].otp_serial == OTP_SERIAL
    code = s.press()
    verdict = s.backend().Verify(otp_pb2.VerifyRequest(serial=OTP_SERIAL, code=code))
    assert verdict.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED


def test_a_confirmation_lost_on_the_way_is_undone_once_refused(
        split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    device = s.plug()
    confirm = s.center_side.confirm

    lose = _first_time(lambda: s.proxy.set(DROP_REPLIES))

    def lost(*args: Any) -> Any:
        lose()  # the center fails before committing; no answer arrives
        raise RuntimeError("center node failed")

    s.center_side.confirm = lost
    err = rpc_error(s.provision)
    assert details_of(err).reason == "PROVISIONING_UNSETTLED"
    assert not empty(device) and not s.enrolled()
    s.center_side.confirm = confirm
    # The reservation expires while the link is down; once it is back the center refuses the
    # confirmation and the branch undoes the programming.
    assert wait_for(lambda: s.reservations() == ["expired"], timeout=15)
    s.proxy.forward()
    service = s.feature.service
    assert service is not None
    assert wait_for(lambda: service.unsettled() == [], timeout=20)
    assert empty(device) and not s.enrolled()
    assert s.provision().otp_serial == OTP_SERIAL


def test_a_lost_reservation_answer_leaves_nothing(split_factory: Callable[..., Split]) -> None:
    # The reservation outlives the branch's wait for its answer and the cancellation after it
    # (a call timeout each): with a shorter one the center's sweep may expire it before the
    # cancellation arrives, and this test is about the cancellation.
    s = split_factory(ttl=30.0)
    device = s.plug()
    reserve = s.center_side.reserve

    def reserved_then_lost(*args: Any) -> Any:
        answer = reserve(*args)
        s.proxy.set(DROP_REPLIES)
        return answer

    s.center_side.reserve = reserved_then_lost
    err = rpc_error(s.provision)
    assert details_of(err).reason == "CENTER_OUTCOME_UNKNOWN"
    assert empty(device) and not s.enrolled()
    # The branch's cancellation reached the center (only answers are lost).
    assert wait_for(lambda: s.reservations() == ["cancelled"], timeout=10)
    s.center_side.reserve = reserve
    s.proxy.forward()
    assert s.provision().otp_serial == OTP_SERIAL
    assert s.reservations() == ["cancelled", "confirmed"]


def test_failover_to_the_second_center_node_mid_provisioning(
        server: Any, tmp_path: Path) -> None:
    pki = Pki.create(tmp_path / "pki")
    store = f"sqlite:///{tmp_path / 'center.db'}"
    centers = [server(store_url=store, roles=["center"], server=pki.server_tls(),
                      security_card={"embosser": "", "printer": ""}) for _ in range(2)]
    branch = server(roles=["branch"], **BRANCH_DEVICES,
                    center=pki.link("bank-a", [c.address for c in centers], **FAST_LINK))
    feature = branch.app.require(HidOtpFeature)
    assert feature.bus is not None and feature.service is not None
    feature.bus.plug(SimulatedOtpDevice(serial=SERIAL))
    program = feature.service._program

    def then_first_node_dies(*args: Any) -> Any:
        done = program(*args)
        centers[0].stop()
        return done

    feature.service._program = then_first_node_dies  # type: ignore[method-assign]
    hid = hid_otp_pb2_grpc.HidOtpServiceStub(branch.channel("bank-a", "branch", "t"))
    result = hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
        customer_id="C-1", device_serial=SERIAL, operator_id="T-1"), timeout=60)
    assert result.otp_serial == OTP_SERIAL
    ops = system_pb2_grpc.SystemServiceStub(pki.channel(centers[1].address, "ops"))
    entries = ops.ListAudit(system_pb2.ListAuditRequest(target=OTP_SERIAL)).entries
    assert ("hid.provision", "ok") in [(e.action, e.outcome) for e in entries]


def test_a_reservation_nobody_confirms_expires(split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    link = hid_otp_pb2_grpc.HidOtpCenterServiceStub(
        s.pki.channel(s.center.address, terminal_name("bank-a")))
    reserved = link.ReserveProvisioning(H.ReserveHidProvisioningRequest(customer_id="C-1",
        provisioning_id="ab" * 16, device_serial=SERIAL, digits=6, identification=True,
        firmware="5.4.3", operator_id="T-1"))
    assert len(reserved.seed) == 20 and len(reserved.access_code) == 6
    assert 0 < reserved.ttl_seconds <= TTL
    # Another institution's branch node sees nothing of it.
    other = hid_otp_pb2_grpc.HidOtpCenterServiceStub(
        s.pki.channel(s.center.address, terminal_name("bank-b")))
    err = rpc_error(lambda: other.ConfirmProvisioning(
        H.ConfirmHidProvisioningRequest(provisioning_id="ab" * 16)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert wait_for(lambda: s.reservations() == ["expired"], timeout=15)
    err = rpc_error(lambda: link.ConfirmProvisioning(
        H.ConfirmHidProvisioningRequest(provisioning_id="ab" * 16)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(err).reason == "PROVISIONING_EXPIRED"
    link.CancelProvisioning(H.CancelHidProvisioningRequest(provisioning_id="ab" * 16))
    assert not s.enrolled()
    # The reservation kept no secret once it ended.
    sealed = s.center.app.db.run(lambda tx: tx.one(
        "SELECT sealed_seed, sealed_ident_key FROM hid_reservations"), write=False)
    assert sealed == (None, None)
    # Backends and tellers may not reach the center's side of provisioning.
    backend = hid_otp_pb2_grpc.HidOtpCenterServiceStub(
        s.pki.channel(s.center.address, "bank-a-backend"))
    err = rpc_error(lambda: backend.GetProvisioningRecords(
        H.GetHidProvisioningRecordsRequest(device_serials=[SERIAL])))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_another_institutions_teller_cannot_use_the_branch_node(
        split_factory: Callable[..., Split]) -> None:
    s = split_factory()
    device = s.plug()
    other = hid_otp_pb2_grpc.HidOtpServiceStub(s.branch.channel("bank-b", "branch", "t"))
    for call in (lambda: other.ProvisionDevice(H.ProvisionHidDeviceRequest(
            customer_id="C-1",
                     device_serial=SERIAL, operator_id="x")),
                 lambda: other.ListDevices(H.ListHidDevicesRequest())):
        err = rpc_error(call)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "acts for bank-a only" in str(err.details())
    assert empty(device) and s.reservations() == []
