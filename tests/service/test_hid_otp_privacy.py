"""HID OTP: a device provisioned by another institution lists and identifies like a device
authd did not provision; where its OTP serial is registered, without who provisioned it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from authd.v1 import hid_otp_pb2, otp_pb2
from devices.hid_otp import Slot, hmac_sha1_config, hotp_config
from tests.answers import answer_of
from tests.service.test_hid_otp_provisioning import OTP_SERIAL, SERIAL, Terminal, direct_session

OTHER = 22_222_222  # programmed by someone else, never provisioned by authd


def hide(*serials: int) -> list[str]:
    return [s for serial in serials for s in (str(serial), f"{serial:010d}")]


def listing(terminal: Terminal, serial: int) -> Any:
    """The listed device, without what differs between any two devices (path, serial) or any
    two listings (the moment the center answered, the same for every device of one)."""
    found = [d for d in terminal.hid.ListDevices(hid_otp_pb2.ListHidDevicesRequest()).devices
             if d.device_serial == serial]
    assert len(found) == 1
    assert found[0].record_as_of > 0
    found[0].path, found[0].device_serial, found[0].record_as_of = "", 0, 0.0
    return found[0]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_a_device_provisioned_elsewhere_looks_unprovisioned(
        server: Callable[..., Any], request: pytest.FixtureRequest, store: str) -> None:
    store_url = None if store == "sqlite" else request.getfixturevalue("pg_url")
    srv = server(store_url=store_url, hid_otp={"monitor_interval": 0})
    a, b = Terminal(srv, "bank-a"), Terminal(srv, "bank-b")
    a.plug(SERIAL)
    a.provision(SERIAL)
    other = a.plug(OTHER)
    session = direct_session(a, other)
    session.put_configuration(Slot.ONE, hotp_config(bytes(range(20))))
    session.put_configuration(Slot.TWO, hmac_sha1_config(bytes(20)))

    # bank-b: the same listing and the same identification answer for both devices.
    assert listing(b, SERIAL) == listing(b, OTHER)
    assert not listing(b, SERIAL).provisioned and listing(b, SERIAL).institution == ""
    identify = {s: answer_of(lambda s=s: b.hid.IdentifyDevice(
        hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=s)), hide=hide(s))
        for s in (SERIAL, OTHER)}
    assert identify[SERIAL] == identify[OTHER]
    assert "HID_IDENTIFY_OUTCOME_NOT_PROVISIONED" in identify[SERIAL][2]
    # Provisioning it again is refused (its serial is taken) without naming bank-a.
    with pytest.raises(grpc.RpcError) as err:
        b.provision(SERIAL, overwrite=True)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "bank-a" not in err.value.details()

    # Once the device is registered at bank-b, bank-b sees it provisioned, not by whom.
    b.otp.Register(otp_pb2.RegisterRequest(customer_id="C-1", serial=OTP_SERIAL, operator_id="T-1"))
    seen = listing(b, SERIAL)
    assert (seen.provisioned, seen.otp_serial, seen.institution) == (True, OTP_SERIAL, "")
    ident = b.hid.IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert ident.outcome == hid_otp_pb2.HID_IDENTIFY_OUTCOME_IDENTIFIED
    assert (ident.otp_serial, ident.institution, ident.provisioned_at) == (OTP_SERIAL, "", 0)
    # The provisioning institution sees all of it.
    mine = a.hid.IdentifyDevice(hid_otp_pb2.IdentifyHidDeviceRequest(device_serial=SERIAL))
    assert mine.institution == "bank-a" and mine.provisioned_at > 0
    assert listing(a, SERIAL).institution == "bank-a"
