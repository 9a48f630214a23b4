"""The corporate master rule (DOMAIN.md §3) when a customer is set up as corporate with other
institutions' OTP devices registered for it already (registered while nobody checked the
rule): one registered online refuses the setup, one registered at a branch needs the teller's
check that the master administrator is here; refused with FAILED_PRECONDITION
CORPORATE_MASTER_RULE and nothing written. Through real gRPC channels, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import grpc
import pytest

from authd.context import Caller, Role
from authd.errors import details_of
from authd.otp.feature import OtpFeature
from authd.v1 import otp_pb2
from authd.v1 import policy_pb2 as P
from tests.policy_bank import Bank
from tests.service.test_otp_corporate_registration import Site

CORPORATE = P.CUSTOMER_KIND_CORPORATE


def setup(bank: Bank, customer: str, *, kind: int = CORPORATE,
          master: bool = False) -> P.PolicyCustomer:
    return bank.teller.SetupCustomer(P.SetupCustomerRequest(
        customer_id=customer, kind=kind, operator_id="teller-kim",
        master_administrator=master), timeout=30)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def written(bank: Bank, customer: str) -> tuple[list, list]:
    """The customer's policy row and every policy audit record about it."""
    def read(tx):
        return (tx.all("SELECT kind FROM policy_customers WHERE institution = ? AND"
                       " customer_id = ?", (bank.institution, customer)),
                tx.all("SELECT action, outcome, detail FROM audit_records WHERE target = ?"
                       " ORDER BY id", (f"customer:{customer}",)))
    rows, audit = bank.srv.app.db.run(read, write=False)
    return [tuple(r) for r in rows], [tuple(r) for r in audit]


@pytest.fixture
def banks(server, store_url) -> tuple[Bank, Site, Bank]:
    a_bank = Bank(server(store_url=store_url))
    b_bank = Bank(a_bank.srv, "bank-b")
    b_bank.customer("b-1")
    return a_bank, Site(a_bank), b_bank


def test_a_foreign_otp_registered_online_refuses_the_corporate_setup(banks):
    a_bank, a, b_bank = banks
    device = b_bank.otp("b-1", "OTP-B-0101")  # issued by bank-b
    a.online(device.serial, "corp", device.next_code())  # "corp" is not set up yet
    for master in (False, True):
        err = refused(lambda master=master: setup(a_bank, "corp", master=master))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = details_of(err)
        assert info.reason == "CORPORATE_MASTER_RULE" and info.metadata["serials"] == \
            device.serial
        assert device.serial in err.details() and "registered online" in err.details()
        assert "Deregister it" in err.details() and "bank-b" not in err.details()
        assert written(a_bank, "corp") == ([], [])
    # what the answer says to do: deregister, set up, the master registers it at a branch
    a_bank.otp_teller.Deregister(otp_pb2.DeregisterRequest(
        serial=device.serial, operator_id="teller-kim", reason="corporate setup"))
    assert setup(a_bank, "corp").kind == CORPORATE
    assert a.at_branch(device.serial, "corp", master=True).registrations
    assert a.media("corp") == [device.serial]


def test_a_foreign_otp_registered_at_a_branch_needs_the_master_administrator(banks):
    a_bank, a, b_bank = banks
    device = b_bank.otp("b-1", "OTP-B-0201")
    a.at_branch(device.serial, "corp")  # before "corp" was corporate: nobody checked
    err = refused(lambda: setup(a_bank, "corp"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(err).reason == "CORPORATE_MASTER_RULE"
    assert "master administrator" in err.details() and device.serial in err.details()
    assert written(a_bank, "corp") == ([], [])
    assert setup(a_bank, "corp", master=True).kind == CORPORATE
    rows, audit = written(a_bank, "corp")
    assert rows == [("corporate",)]
    assert json.loads(audit[-1][2])["foreign_otps_by_master"] == [device.serial]


def test_own_and_other_customers_devices_do_not_hold_the_setup(banks):
    a_bank, a, b_bank = banks
    a_bank.otp("corp", "OTP-A-0301")  # bank-a's own device, registered for "corp"
    other = b_bank.otp("b-1", "OTP-B-0302")
    a.at_branch(other.serial, "someone-else")
    assert setup(a_bank, "corp").kind == CORPORATE
    assert "foreign_otps_by_master" not in json.loads(written(a_bank, "corp")[1][-1][2])


def test_a_reissued_device_is_held_to_the_rule_in_the_old_ones_place(banks):
    a_bank, a, b_bank = banks
    old = b_bank.otp("b-1", "OTP-B-0311")
    a.at_branch(old.serial, "corp")
    b_bank.otp_teller.Replace(otp_pb2.ReplaceRequest(
        old_serial=old.serial, new_serial="OTP-B-0312", reason=otp_pb2.REPLACE_REASON_REISSUE,
        operator_id="teller-kim"))
    err = refused(lambda: setup(a_bank, "corp"))
    assert details_of(err).metadata["serials"] == "OTP-B-0312"  # the replaced one has ended
    assert setup(a_bank, "corp", master=True).kind == CORPORATE


def test_a_personal_customer_keeps_its_foreign_otps_and_takes_no_master_flag(banks):
    a_bank, a, b_bank = banks
    device = b_bank.otp("b-1", "OTP-B-0401")
    a.online(device.serial, "kim", device.next_code())
    err = refused(lambda: setup(a_bank, "kim", kind=P.CUSTOMER_KIND_PERSONAL, master=True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert written(a_bank, "kim") == ([], [])
    assert setup(a_bank, "kim", kind=P.CUSTOMER_KIND_PERSONAL).kind == \
        P.CUSTOMER_KIND_PERSONAL


def test_a_setup_waits_for_a_registration_in_flight_and_sees_it(banks):
    """The rule reads what the other writes: a registration of a foreign OTP being committed
    while the customer is set up as corporate is seen by the setup (not both let through)."""
    a_bank, _, b_bank = banks
    device = b_bank.otp("b-1", "OTP-B-0501")
    center = a_bank.srv.app.require(OtpFeature).service
    teller = Caller("bank-a", Role.BRANCH, "teller-1")
    registering, commit = threading.Event(), threading.Event()

    def register(tx):
        center.register(tx, serial=device.serial, institution="bank-a", caller=teller,
                        customer_id="corp")
        registering.set()
        assert commit.wait(60)

    writer = threading.Thread(target=lambda: a_bank.srv.app.db.run(register))
    writer.start()
    try:
        assert registering.wait(60)
        answer = a_bank.teller.SetupCustomer.future(P.SetupCustomerRequest(
            customer_id="corp", kind=CORPORATE, operator_id="teller-kim"), timeout=60)
        time.sleep(0.5)  # the setup is under way, waiting for the registration's commit
    finally:
        commit.set()
        writer.join(60)
    assert not writer.is_alive(), "the corporate setup did not end"
    with pytest.raises(grpc.RpcError) as err:
        answer.result()
    assert details_of(err.value).reason == "CORPORATE_MASTER_RULE"
    assert written(a_bank, "corp") == ([], [])
