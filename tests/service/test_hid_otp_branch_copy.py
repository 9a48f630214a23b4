"""ListDevices and IdentifyDevice at a branch node while its center is unreachable: the node
answers from its copy of the center's last answers, saying so and how old each record is, for
``[hid_otp] branch_copy_max_age`` only; identifying a device by its key and provisioning still
need the center. The branch node's store on SQLite and PostgreSQL, the center across a real
mTLS link behind a TCP proxy that is cut."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.hid_otp.feature import HidOtpFeature
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import hid_otp_pb2_grpc
from simulators.hid_otp import SimulatedOtpDevice
from tests.split import BRANCH_DEVICES, FAST_LINK, Pki
from tests.tcpproxy import TcpProxy

PROVISIONED, LISTED, NEVER_SEEN, NO_KEY = 32_000_001, 32_000_002, 32_000_003, 32_000_004


class Branch:
    def __init__(self, server: Any, tmp_path: Path, store_url: str,
                 **hid_otp: Any) -> None:
        self.pki = Pki.create(tmp_path / "pki")
        self.center = server(store_url=f"sqlite:///{tmp_path / 'center.db'}",
                             roles=["center"], server=self.pki.server_tls(),
                             security_card={"embosser": "", "printer": ""})
        self.proxy = TcpProxy(("127.0.0.1", self.center.port))
        link = self.pki.link("bank-a", [self.proxy.address],
                             **{**FAST_LINK, "call_timeout": 3.0})
        devices = {**BRANCH_DEVICES,
                   "hid_otp": {**BRANCH_DEVICES["hid_otp"], **hid_otp}}
        self.node = server(store_url=store_url, roles=["branch"], center=link, **devices)
        teller = self.node.channel("bank-a", "branch", "teller-07")
        self.hid = hid_otp_pb2_grpc.HidOtpServiceStub(teller)
        self.feature: HidOtpFeature = self.node.app.require(HidOtpFeature)

    def plug(self, serial: int) -> None:
        assert self.feature.bus is not None
        self.feature.bus.plug(SimulatedOtpDevice(serial=serial))

    def listed(self) -> tuple[H.ListHidDevicesResponse, dict[int, H.HidDevice]]:
        m = self.hid.ListDevices(H.ListHidDevicesRequest(), timeout=60)
        return m, {d.device_serial: d for d in m.devices}

    def provision(self, serial: int, *, identification: bool = True
                  ) -> H.ProvisionHidDeviceResponse:
        return self.hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
            customer_id="C-1", device_serial=serial, operator_id="T-0042",
            without_identification=not identification), timeout=60)

    def identify(self, serial: int) -> H.IdentifyHidDeviceResponse:
        return self.hid.IdentifyDevice(H.IdentifyHidDeviceRequest(device_serial=serial),
                                       timeout=60)

    def refused(self, call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, str]:
        with pytest.raises(grpc.RpcError) as err:
            call()
        return err.value.code(), details_of(err.value).reason, err.value.details() or ""

    def rows(self) -> dict[int, tuple[Any, ...]]:
        found = self.node.app.db.run(lambda tx: tx.all(
            "SELECT device_serial, otp_serial, record_institution, firmware, checked_at,"
            " expired_at FROM hid_branch_records"), write=False)
        return {int(r[0]): tuple(r[1:]) for r in found}


@pytest.fixture
def branch(server: Any, tmp_path: Path, store_url: str) -> Iterator[Branch]:
    b = Branch(server, tmp_path, store_url)
    yield b
    b.proxy.close()


def test_listing_with_the_center_down_answers_from_the_branch_copy(branch: Branch) -> None:
    branch.plug(PROVISIONED)
    before = time.time()
    otp_serial = branch.provision(PROVISIONED).otp_serial
    branch.plug(LISTED)
    online, devices = branch.listed()
    assert not online.from_branch_copy and online.center_error == ""
    assert devices[PROVISIONED].provisioned and not devices[LISTED].provisioned
    as_of = devices[LISTED].record_as_of
    assert before <= as_of <= time.time()
    assert devices[PROVISIONED].record_as_of == as_of  # answered by the center just now

    branch.proxy.refuse()
    branch.plug(NEVER_SEEN)
    offline, devices = branch.listed()
    assert offline.from_branch_copy and "center is unreachable" in offline.center_error
    p = devices[PROVISIONED]
    assert (p.provisioned, p.otp_serial, p.institution, p.record_as_of) == (
        True, otp_serial, "bank-a", as_of)
    assert (devices[LISTED].provisioned, devices[LISTED].record_as_of) == (False, as_of)
    # never answered for on this node: unknown, said as record_as_of 0
    assert (devices[NEVER_SEEN].provisioned, devices[NEVER_SEEN].record_as_of) == (False, 0.0)
    assert devices[NEVER_SEEN].firmware  # the device itself is read as always

    # provisioning still needs the center
    with pytest.raises(grpc.RpcError) as err:
        branch.provision(NEVER_SEEN)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(err.value).reason == "CENTER_UNREACHABLE"

    branch.proxy.forward()
    deadline = time.monotonic() + 60
    while True:  # the link finds the center again
        again, devices = branch.listed()
        if not again.from_branch_copy or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not again.from_branch_copy
    assert all(d.record_as_of > as_of for d in devices.values())
    assert devices[PROVISIONED].provisioned and not devices[NEVER_SEEN].provisioned


def test_the_copy_holds_only_what_the_institution_was_told(branch: Branch) -> None:
    branch.plug(PROVISIONED)
    branch.provision(PROVISIONED)
    rows = branch.node.app.db.run(lambda tx: tx.all(
        "SELECT institution, device_serial, otp_serial, record_institution FROM"
        " hid_branch_records"), write=False)
    assert [tuple(r) for r in rows] == [("bank-a", PROVISIONED, f"HID-{PROVISIONED:010d}",
                                         "bank-a")]
    # the center's own store has no copy: it answers from its records
    center_rows = branch.center.app.db.run(
        lambda tx: tx.all("SELECT 1 FROM hid_branch_records"), write=False)
    assert center_rows == []


def test_a_branch_node_that_never_reached_its_center_lists_every_record_as_unknown(
        branch: Branch) -> None:
    branch.proxy.refuse()
    branch.plug(NEVER_SEEN)
    m, devices = branch.listed()
    assert m.from_branch_copy and (devices[NEVER_SEEN].provisioned,
                                   devices[NEVER_SEEN].record_as_of) == (False, 0.0)


@pytest.fixture(params=["sqlite"])
def single(request: Any, server: Callable[..., Any]) -> Any:
    return server(**BRANCH_DEVICES)


def test_a_node_with_the_center_in_process_answers_from_the_center(single: Any) -> None:
    feature = single.app.require(HidOtpFeature)
    assert feature.bus is not None
    feature.bus.plug(SimulatedOtpDevice(serial=LISTED))
    stub = hid_otp_pb2_grpc.HidOtpServiceStub(single.channel("bank-a", "branch", "t-1"))
    before = time.time()
    m = stub.ListDevices(H.ListHidDevicesRequest(), timeout=60)
    (d,) = [d for d in m.devices if d.device_serial == LISTED]
    assert not m.from_branch_copy and before <= d.record_as_of <= time.time()


def test_identifying_with_the_center_down_answers_from_the_copy_only_what_needs_no_key(
        branch: Branch) -> None:
    for serial in (PROVISIONED, NO_KEY, LISTED):
        branch.plug(serial)
    branch.provision(PROVISIONED)
    no_key = branch.provision(NO_KEY, identification=False).otp_serial
    online = branch.identify(PROVISIONED)
    assert online.outcome == H.HID_IDENTIFY_OUTCOME_IDENTIFIED and not online.from_branch_copy
    _, devices = branch.listed()
    as_of = devices[LISTED].record_as_of

    branch.proxy.refuse()
    branch.plug(NEVER_SEEN)
    # not provisioned as the center last said: nothing to challenge
    listed = branch.identify(LISTED)
    assert (listed.outcome, listed.from_branch_copy, listed.record_as_of) == (
        H.HID_IDENTIFY_OUTCOME_NOT_PROVISIONED, True, as_of)
    assert "center is unreachable" in listed.center_error
    # provisioned without an identification key: nothing to challenge either
    plain = branch.identify(NO_KEY)
    assert (plain.outcome, plain.otp_serial, plain.institution, plain.from_branch_copy) == (
        H.HID_IDENTIFY_OUTCOME_NO_IDENTIFICATION_KEY, no_key, "bank-a", True)
    assert plain.record_as_of == as_of
    # the identification key is at the center only: its answer cannot be checked here
    code, reason, message = branch.refused(lambda: branch.identify(PROVISIONED))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "IDENTIFICATION_NEEDS_CENTER")
    assert "only the center can check" in message
    # never answered for here: the center is needed
    code, reason, _ = branch.refused(lambda: branch.identify(NEVER_SEEN))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "CENTER_UNREACHABLE")


# Long enough for the answers "within the age" on a loaded machine (a listing, a refusal, a
# listing and an identification after the record's time).
MAX_AGE = 8.0


def test_an_answer_older_than_the_max_age_is_not_used_and_is_purged(
        server: Any, tmp_path: Path, store_url: str) -> None:
    branch = Branch(server, tmp_path, store_url, branch_copy_max_age=MAX_AGE)
    try:
        branch.plug(PROVISIONED)
        branch.plug(NO_KEY)
        branch.provision(PROVISIONED)
        branch.provision(NO_KEY, identification=False)
        _, devices = branch.listed()
        as_of = devices[PROVISIONED].record_as_of
        branch.proxy.refuse()
        young, _ = branch.listed()
        assert young.from_branch_copy  # within the age: answered from the copy
        assert branch.identify(NO_KEY).from_branch_copy

        time.sleep(max(0.0, as_of + MAX_AGE + 0.5 - time.time()))  # the copy grows old
        code, reason, message = branch.refused(branch.listed)
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "BRANCH_COPY_EXPIRED")
        assert f"branch_copy_max_age ({MAX_AGE:g} s" in message and str(PROVISIONED) in message
        code, reason, _ = branch.refused(lambda: branch.identify(NO_KEY))
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "BRANCH_COPY_EXPIRED")
        # purged: no record is kept any more, only that one was and when
        rows = branch.rows()
        for serial in (PROVISIONED, NO_KEY):
            otp_serial, institution, firmware, checked_at, expired_at = rows[serial]
            assert (otp_serial, institution, firmware) == (None, "", "")
            assert checked_at == as_of and expired_at >= as_of + MAX_AGE
        # and the same answer again, not "never answered"
        assert branch.refused(branch.listed)[1] == "BRANCH_COPY_EXPIRED"

        branch.proxy.forward()
        deadline = time.monotonic() + 60
        while True:  # the link finds the center again; its answer replaces the mark
            try:
                again, devices = branch.listed()
                if not again.from_branch_copy:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert devices[PROVISIONED].provisioned
        assert branch.rows()[PROVISIONED][0] == f"HID-{PROVISIONED:010d}"
        assert branch.rows()[PROVISIONED][4] is None
    finally:
        branch.proxy.close()


def test_the_copy_is_purged_without_being_read(server: Any, tmp_path: Path,
                                               store_url: str) -> None:
    branch = Branch(server, tmp_path, store_url, branch_copy_max_age=2.0)
    try:
        branch.plug(PROVISIONED)
        branch.provision(PROVISIONED)
        deadline = time.monotonic() + 30
        while branch.rows()[PROVISIONED][4] is None:  # the node's own purge, every max age
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert branch.rows()[PROVISIONED][:2] == (None, "")
    finally:
        branch.proxy.close()
