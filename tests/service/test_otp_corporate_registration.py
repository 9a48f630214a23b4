"""The corporate master rule (DOMAIN.md §3) when an OTP device is registered: a corporate
customer registers another institution's OTP only at a branch, by its master administrator;
otherwise FAILED_PRECONDITION before anything is written (no registration, no audit record,
no code used up, no failure counted). Through a real gRPC channel, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import customer_pb2 as C
from authd.v1 import customer_pb2_grpc, otp_pb2, otp_pb2_grpc
from authd.v1 import policy_pb2 as P
from tests.answers import answer_of
from tests.policy_bank import Bank, OtpDevice

CORPORATE = P.CUSTOMER_KIND_CORPORATE
REFUSED = grpc.StatusCode.FAILED_PRECONDITION


def refusal(call: Any) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details() or "", details_of(err.value).reason


class Site:
    """One institution's teller, backend and customer view of the OTP center."""

    def __init__(self, bank: Bank) -> None:
        self.bank = bank
        srv, inst = bank.srv, bank.institution
        self.backend = otp_pb2_grpc.OtpServiceStub(srv.channel(inst, "backend", "ib-1"))
        self.customers = customer_pb2_grpc.CustomerServiceStub(
            srv.channel(inst, "backend", "ib-1"))

    def at_branch(self, serial: str, customer: str, master: bool = False) -> Any:
        return self.bank.otp_teller.Register(otp_pb2.RegisterRequest(
            serial=serial, operator_id="teller-kim", customer_id=customer,
            master_administrator=master), timeout=30)

    def online(self, serial: str, customer: str, code: str, **more: Any) -> Any:
        return self.backend.Register(otp_pb2.RegisterRequest(
            serial=serial, strong_authentication=True, code=code, customer_id=customer,
            **more), timeout=30)

    def media(self, customer: str) -> list[str]:
        return [m.serial for m in self.customers.ListCustomerMedia(
            C.ListCustomerMediaRequest(customer_id=customer, include_ended=True)).media]


def _audit(bank: Bank, serial: str) -> list[tuple[str, str, str]]:
    rows = bank.srv.app.db.run(lambda tx: tx.all(
        "SELECT institution, action, outcome FROM audit_records WHERE target = ?"
        " ORDER BY id", (serial,)), write=False)
    return [tuple(r) for r in rows]


def test_a_corporate_customer_registers_a_foreign_otp_only_by_its_master_at_a_branch(
        server: Any, store_url: str) -> None:
    a_bank = Bank(server(store_url=store_url))
    a, b = Site(a_bank), Site(Bank(a_bank.srv, "bank-b"))
    a_bank.customer("corp", kind=CORPORATE)
    b.bank.customer("b-1")
    device: OtpDevice = b.bank.otp("b-1", "OTP-B-0001")  # issued by bank-b
    audit_before = _audit(a_bank, device.serial)

    # at a branch, without the master administrator: refused, nothing written
    code, message, reason = refusal(lambda: a.at_branch(device.serial, "corp"))
    assert code == REFUSED and reason == "CORPORATE_MASTER_RULE"
    assert "master administrator" in message and "bank-b" not in message
    # online, with a right code: refused before the code is tried (it is not used up)
    right = device.next_code()
    code, message, reason = refusal(lambda: a.online(device.serial, "corp", right))
    assert code == REFUSED and reason == "CORPORATE_MASTER_RULE" and "at a branch" in message
    # online, with a wrong code: refused the same way, and no failure is counted
    online_answer = refusal(lambda: a.online(device.serial, "corp", "000000"))
    assert online_answer[0] == REFUSED
    # an unknown serial gets the same answer online: the refusal tells nothing of bank-b
    assert answer_of(lambda: a.online(device.serial, "corp", "000000"),
                     hide=[device.serial]) == answer_of(
        lambda: a.online("OTP-NOWHERE-1", "corp", "000000"), hide=["OTP-NOWHERE-1"])
    # the master flag belongs to a branch registration
    code, _, _ = refusal(lambda: a.online(device.serial, "corp", right,
                                          master_administrator=True))
    assert code == grpc.StatusCode.INVALID_ARGUMENT

    assert a.media("corp") == [] and _audit(a_bank, device.serial) == audit_before
    status = b.backend.GetStatus(otp_pb2.GetStatusRequest(serial=device.serial))
    assert status.consecutive_failures == 0
    assert [r.institution for r in status.registrations] == ["bank-b"]
    verified = b.backend.Verify(otp_pb2.VerifyRequest(serial=device.serial, code=right))
    assert verified.outcome == otp_pb2.VERIFY_OUTCOME_ACCEPTED  # the code was never used

    # the master administrator at a branch: registered
    done = a.at_branch(device.serial, "corp", master=True)
    assert [r.institution for r in done.registrations] == ["bank-a"]
    assert a.media("corp") == [device.serial]
    assert _audit(a_bank, device.serial)[-1] == ("bank-a", "otp.register", "registered")


def test_own_otps_and_personal_customers_are_not_held_to_the_rule(
        server: Any, store_url: str) -> None:
    a_bank = Bank(server(store_url=store_url))
    a, b = Site(a_bank), Site(Bank(a_bank.srv, "bank-b"))
    a_bank.customer("corp", kind=CORPORATE)
    a_bank.customer("kim")
    b.bank.customer("b-1")
    # the institution's own OTP: an employee registers it at a branch, or online
    own = a_bank.otp("corp", "OTP-A-0001")
    a_bank.otp_teller.Deregister(otp_pb2.DeregisterRequest(
        serial=own.serial, operator_id="teller-kim", reason="again"))
    assert a.at_branch(own.serial, "corp").registrations
    a_bank.otp_teller.Deregister(otp_pb2.DeregisterRequest(
        serial=own.serial, operator_id="teller-kim", reason="again"))
    assert a.online(own.serial, "corp", own.next_code()).registrations
    # a personal customer, and a customer bank-a has not set up, register another bank's OTP
    # at a branch and online as before
    first, second = b.bank.otp("b-1", "OTP-B-0002"), b.bank.otp("b-1", "OTP-B-0003")
    assert a.at_branch(first.serial, "kim").registrations
    assert a.online(second.serial, "walk-in", second.next_code()).registrations
