"""CustomerService.ChangeCustomerKind: a customer set up as personal becomes corporate (and
back) at a branch. To corporate, the corporate master rule of a corporate setup applies to
the other institutions' OTP devices registered for it already (DOMAIN.md §3), ordered against
registrations by the customer's lock; registrations stay as they are and follow the new kind's
rules afterwards; a contract holds the change, own limits above the new maximum are lowered;
audited; another institution's call on the customer reference learns nothing. Through real
gRPC channels on SQLite and PostgreSQL, and through a branch node (tests/split.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.context import Caller, Role
from authd.errors import details_of
from authd.otp.feature import OtpFeature
from authd.v1 import customer_pb2 as C
from authd.v1 import customer_pb2_grpc, otp_pb2, policy_pb2_grpc
from authd.v1 import policy_pb2 as P
from tests.answers import answer_of
from tests.conftest import joined
from tests.policy_bank import Bank
from tests.service.test_center_link import branch_node, center_audit, center_node
from tests.service.test_otp_corporate_registration import Site
from tests.split import Pki, terminal_name

PERSONAL, CORPORATE = P.CUSTOMER_KIND_PERSONAL, P.CUSTOMER_KIND_CORPORATE


def customers(bank: Bank, role: str = "branch") -> customer_pb2_grpc.CustomerServiceStub:
    return customer_pb2_grpc.CustomerServiceStub(
        bank.srv.channel(bank.institution, role, "teller-1"))


def change(bank: Bank, customer: str, kind: int, *, master: bool = False,
           operator: str = "teller-kim", role: str = "branch") -> C.CustomerKindChange:
    return customers(bank, role).ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id=customer, kind=kind, operator_id=operator, master_administrator=master,
        reason="the business incorporated"), timeout=30)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def kind_of(bank: Bank, customer: str) -> str:
    rows = bank.srv.app.db.run(lambda tx: tx.all(
        "SELECT kind FROM policy_customers WHERE institution = ? AND customer_id = ?",
        (bank.institution, customer)), write=False)
    return str(rows[0][0]) if rows else ""


def changes(bank: Bank, customer: str) -> list[dict[str, Any]]:
    """The audit records of the customer's kind changes."""
    rows = bank.srv.app.db.run(lambda tx: tx.all(
        "SELECT institution, subject, detail FROM audit_records WHERE target = ? AND"
        " action = 'policy.kind_changed' ORDER BY id", (f"customer:{customer}",)), write=False)
    return [{"institution": r[0], "subject": r[1], **json.loads(r[2])} for r in rows]


@pytest.fixture
def banks(server: Any, store_url: str) -> tuple[Bank, Site, Bank]:
    a_bank = Bank(server(store_url=store_url))
    b_bank = Bank(a_bank.srv, "bank-b")
    b_bank.customer("b-1")
    return a_bank, Site(a_bank), b_bank


def test_a_personal_customer_becomes_corporate_and_back_keeping_its_media(banks):
    a_bank, a, _ = banks
    a_bank.customer("kim")
    own = a_bank.otp("kim", "OTP-A-1001")  # bank-a's own device
    a_bank.card("kim")
    media = a.media("kim")
    personal = a_bank.teller.GetCustomer(P.PolicyCustomerRef(customer_id="kim"))
    assert personal.best_grade == P.SECURITY_GRADE_PERSONAL_SAFE

    done = change(a_bank, "kim", CORPORATE)
    assert (done.customer_id, done.kind, done.previous_kind, done.changed) == (
        "kim", CORPORATE, PERSONAL, True)
    assert not done.foreign_otps_by_master and not done.limits_lowered
    assert done.customer.kind == CORPORATE
    assert done.customer.best_grade == P.SECURITY_GRADE_CORPORATE_SAFE
    assert [g.grade for g in done.customer.grades] == [P.SECURITY_GRADE_CORPORATE_SAFE]
    assert kind_of(a_bank, "kim") == "corporate"
    assert a.media("kim") == media == [own.serial, media[1]]  # no registration changed
    # agreements, registration and activity stay the customer's
    after = a_bank.teller.GetCustomer(P.PolicyCustomerRef(customer_id="kim"))
    assert (after.agreed_at, after.registered_at) == (personal.agreed_at,
                                                      personal.registered_at)

    back = change(a_bank, "kim", PERSONAL)
    assert (back.kind, back.previous_kind, back.changed) == (PERSONAL, CORPORATE, True)
    assert back.customer.best_grade == P.SECURITY_GRADE_PERSONAL_SAFE
    # the same kind again: nothing written
    again = change(a_bank, "kim", PERSONAL)
    assert (again.kind, again.previous_kind, again.changed) == (PERSONAL, PERSONAL, False)
    records = changes(a_bank, "kim")
    assert [(r["institution"], r["subject"], r["previous_kind"], r["kind"], r["operator"],
             r["reason"]) for r in records] == [
        ("bank-a", "teller-1", "personal", "corporate", "teller-kim",
         "the business incorporated"),
        ("bank-a", "teller-1", "corporate", "personal", "teller-kim",
         "the business incorporated")]


def test_to_corporate_a_foreign_otp_registered_online_refuses_the_change(banks):
    a_bank, a, b_bank = banks
    a_bank.customer("corp")
    device = b_bank.otp("b-1", "OTP-B-1101")  # issued by bank-b
    a.online(device.serial, "corp", device.next_code())
    for master in (False, True):
        err = refused(lambda master=master: change(a_bank, "corp", CORPORATE, master=master))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = details_of(err)
        assert info.reason == "CORPORATE_MASTER_RULE"
        assert info.metadata["serials"] == device.serial
        assert "registered online" in err.details()
        assert "change the customer to corporate" in err.details()
        assert "bank-b" not in err.details()
        assert kind_of(a_bank, "corp") == "personal" and changes(a_bank, "corp") == []
    # what the answer says: deregister it, change, the master registers it at a branch
    a_bank.otp_teller.Deregister(otp_pb2.DeregisterRequest(
        serial=device.serial, operator_id="teller-kim", reason="corporate"))
    assert change(a_bank, "corp", CORPORATE).changed
    assert a.at_branch(device.serial, "corp", master=True).registrations


def test_to_corporate_a_foreign_otp_registered_at_a_branch_needs_the_master(banks):
    a_bank, a, b_bank = banks
    a_bank.customer("corp")
    device = b_bank.otp("b-1", "OTP-B-1201")
    a.at_branch(device.serial, "corp")  # while personal: nobody checked the rule
    err = refused(lambda: change(a_bank, "corp", CORPORATE))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(err).reason == "CORPORATE_MASTER_RULE"
    assert "master administrator" in err.details() and device.serial in err.details()
    assert kind_of(a_bank, "corp") == "personal" and changes(a_bank, "corp") == []

    done = change(a_bank, "corp", CORPORATE, master=True)
    assert list(done.foreign_otps_by_master) == [device.serial]
    assert changes(a_bank, "corp")[-1]["foreign_otps_by_master"] == [device.serial]
    assert a.media("corp") == [device.serial]  # the registration stays, now the master's


def test_registrations_after_the_change_follow_the_new_kind(banks):
    a_bank, a, b_bank = banks
    a_bank.customer("corp")
    change(a_bank, "corp", CORPORATE)
    device = b_bank.otp("b-1", "OTP-B-1301")
    err = refused(lambda: a.online(device.serial, "corp", device.next_code()))
    assert details_of(err).reason == "CORPORATE_MASTER_RULE"
    err = refused(lambda: a.at_branch(device.serial, "corp"))
    assert details_of(err).reason == "CORPORATE_MASTER_RULE"
    assert a.media("corp") == []
    # back to personal: no master rule any more
    change(a_bank, "corp", PERSONAL)
    assert a.online(device.serial, "corp", device.next_code()).registrations
    # and to corporate again: checked again from scratch
    err = refused(lambda: change(a_bank, "corp", CORPORATE, master=True))
    assert details_of(err).reason == "CORPORATE_MASTER_RULE"


def test_transfers_after_the_change_meet_the_new_kinds_rules(banks):
    a_bank, a, b_bank = banks
    a_bank.customer("corp")
    own = a_bank.otp("corp", "OTP-A-1701")
    device = b_bank.otp("b-1", "OTP-B-1701")
    a.at_branch(device.serial, "corp")
    codes = a_bank.card("corp")
    a_bank.designate("corp")
    assert a_bank.transfer("corp", 200_000_000, otp=own).outcome == P.DECISION_OVER_LIMIT
    change(a_bank, "corp", CORPORATE, master=True)
    # the corporate grade with its own OTP, the confirmed foreign OTP for the master only
    d = a_bank.transfer("corp", 200_000_000, otp=own, corporate_role=P.CORPORATE_EMPLOYEE)
    assert (d.outcome, d.grade) == (P.DECISION_APPROVED, P.SECURITY_GRADE_CORPORATE_SAFE)
    employee = a_bank.transfer("corp", 1_000, otp=device, to_account="1",
                               corporate_role=P.CORPORATE_EMPLOYEE, code="000000")
    assert [r.code for r in employee.reasons] == ["employee_foreign_otp"]
    master = a_bank.transfer("corp", 1_000, otp=device, to_account="2",
                             corporate_role=P.CORPORATE_MASTER)
    assert master.outcome == P.DECISION_APPROVED
    # the security card stays registered but gives a corporate customer no grade
    card = a_bank.transfer("corp", 1_000, card=a_bank.challenge("corp", codes),
                           to_account="3")
    assert [r.code for r in card.reasons] == ["grade_not_available"]
    # back to personal the card gives the general grade again; today's total stays the
    # customer's, and is over the general grade's day already
    change(a_bank, "corp", PERSONAL)
    card = a_bank.transfer("corp", 1_000, card=a_bank.challenge("corp", codes),
                           to_account="4")
    assert (card.outcome, card.grade, card.used_today_krw) == (
        P.DECISION_OVER_LIMIT, P.SECURITY_GRADE_PERSONAL_GENERAL, 200_001_000)


def test_own_limits_above_the_new_maximum_are_lowered_and_a_contract_holds_the_change(banks):
    a_bank, _, _ = banks
    a_bank.customer("corp", kind=CORPORATE)
    a_bank.otp("corp", "OTP-A-1401")
    a_bank.teller.SetLimits(P.SetLimitsRequest(customer_id="corp", per_transfer_krw=800_000_000,
                                               daily_krw=900_000_000, operator_id="kim"))
    done = change(a_bank, "corp", PERSONAL)
    assert done.limits_lowered
    assert (done.customer.own_per_transfer_krw, done.customer.own_daily_krw) == (
        100_000_000, 500_000_000)  # the personal safe grade's maximum
    record = changes(a_bank, "corp")[-1]
    assert (record["own_limits_before"], record["own_limits"]) == (
        [800_000_000, 900_000_000], [100_000_000, 500_000_000])
    # to corporate the customer's own (lower) limits stay: raising is the customer's choice
    up = change(a_bank, "corp", CORPORATE)
    assert not up.limits_lowered and up.customer.own_per_transfer_krw == 100_000_000

    a_bank.teller.RecordContract(P.RecordContractRequest(
        customer_id="corp", reference="K-2026-7", grade=P.SECURITY_GRADE_CORPORATE_SAFE,
        per_transfer_krw=2_000_000_000, daily_krw=8_000_000_000, operator_id="kim"))
    err = refused(lambda: change(a_bank, "corp", PERSONAL))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(err).reason == "CONTRACT_RECORDED" and "K-2026-7" in err.details()
    assert kind_of(a_bank, "corp") == "corporate"
    a_bank.teller.RecordContract(P.RecordContractRequest(customer_id="corp", operator_id="kim"))
    assert change(a_bank, "corp", PERSONAL).changed


def test_bad_requests_change_nothing(banks):
    a_bank, _, _ = banks
    a_bank.customer("kim")
    for call, code in [
        (lambda: change(a_bank, "kim", CORPORATE, role="backend"),
         grpc.StatusCode.PERMISSION_DENIED),
        (lambda: change(a_bank, "kim", PERSONAL, master=True),
         grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: change(a_bank, "kim", P.CUSTOMER_KIND_UNSPECIFIED),
         grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: change(a_bank, "kim", CORPORATE, operator=""),
         grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: change(a_bank, "kim!", CORPORATE), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: change(a_bank, "nobody", CORPORATE), grpc.StatusCode.NOT_FOUND),
    ]:
        assert refused(call).code() == code
    assert kind_of(a_bank, "kim") == "personal" and changes(a_bank, "kim") == []


def test_another_institution_learns_nothing_and_changes_nothing(banks):
    a_bank, _, b_bank = banks
    a_bank.customer("A-77")
    seen = answer_of(lambda: change(b_bank, "A-77", CORPORATE), hide=["A-77"])
    unknown = answer_of(lambda: change(b_bank, "N-99", CORPORATE), hide=["N-99"])
    assert seen == unknown and seen[0] == "NOT_FOUND"
    assert "bank-a" not in str(seen)
    assert kind_of(a_bank, "A-77") == "personal" and changes(a_bank, "A-77") == []
    # bank-b's own customer of the same reference is another customer
    b_bank.customer("A-77")
    assert change(b_bank, "A-77", CORPORATE).changed
    assert kind_of(a_bank, "A-77") == "personal" and kind_of(b_bank, "A-77") == "corporate"


def test_a_change_waits_for_a_registration_in_flight_and_sees_it(banks):
    """The rule reads what the other writes: a foreign OTP's registration being committed
    while the customer changes to corporate is seen by the change (not both let through)."""
    a_bank, _, b_bank = banks
    a_bank.customer("corp")
    device = b_bank.otp("b-1", "OTP-B-1501")
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
        answer = customers(a_bank).ChangeCustomerKind.future(C.ChangeCustomerKindRequest(
            customer_id="corp", kind=CORPORATE, operator_id="teller-kim"), timeout=60)
        time.sleep(0.5)  # the change is under way, waiting for the registration's commit
    finally:
        commit.set()
        writer.join(60)
    assert not writer.is_alive(), "the corporate change did not end"
    with pytest.raises(grpc.RpcError) as err:
        answer.result()
    assert details_of(err.value).reason == "CORPORATE_MASTER_RULE"
    assert kind_of(a_bank, "corp") == "personal"


def test_racing_changes_and_online_registrations_never_both_pass(banks):
    """A change to corporate and an online registration of another institution's OTP for the
    same customer, started together: exactly one of them is refused, every time."""
    a_bank, a, b_bank = banks
    for n in range(6):
        customer = f"race-{n}"
        a_bank.customer(customer)
        device = b_bank.otp("b-1", f"OTP-B-16{n:02d}")
        code = device.next_code()
        start = threading.Barrier(2)
        results: dict[str, str] = {}

        def run(name: str, call: Any, start: threading.Barrier = start,
                results: dict[str, str] = results) -> None:
            start.wait(10)
            try:
                call()
                results[name] = "ok"
            except grpc.RpcError as exc:
                results[name] = details_of(exc).reason

        threads = [threading.Thread(target=run, args=(
                       "change", lambda c=customer: change(a_bank, c, CORPORATE))),
                   threading.Thread(target=run, args=(
                       "register", lambda c=customer, d=device, k=code: a.online(
                           d.serial, c, k)))]
        for t in threads:
            t.start()
        for t in threads:
            joined(t, 60)
        assert sorted(results.values()) == ["CORPORATE_MASTER_RULE", "ok"], results
        corporate = kind_of(a_bank, customer) == "corporate"
        assert corporate == (results["change"] == "ok")
        assert (a.media(customer) == [device.serial]) == (results["register"] == "ok")


@pytest.fixture
def pki_dir(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def test_a_teller_at_a_branch_node_changes_the_kind_at_the_center(
        server: Any, pki_dir: Pki, store_url: str) -> None:
    center = center_node(server, pki_dir, store_url)
    node = branch_node(server, pki_dir, "bank-a", center)
    teller = node.channel("bank-a", "branch", "teller-07")
    policy_pb2_grpc.PolicyServiceStub(teller).SetupCustomer(P.SetupCustomerRequest(
        customer_id="A-1", kind=PERSONAL, operator_id="kim"), timeout=30)
    stub = customer_pb2_grpc.CustomerServiceStub(teller)
    done = stub.ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id="A-1", kind=CORPORATE, operator_id="kim"), timeout=30)
    assert (done.changed, done.customer.kind) == (True, CORPORATE)
    (entry,) = [e for e in center_audit(pki_dir, center, "customer:A-1")
                if e.action == "policy.kind_changed"]
    assert (entry.institution, entry.subject, json.loads(entry.detail_json)["operator"]) == (
        "bank-a", terminal_name("bank-a"), "kim")
    # the center's refusals reach the teller as they are
    err = refused(lambda: stub.ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id="A-2", kind=CORPORATE, operator_id="kim"), timeout=30))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    # another institution's branch node learns nothing of bank-a's customer
    other = branch_node(server, pki_dir, "bank-b", center)
    b_stub = customer_pb2_grpc.CustomerServiceStub(other.channel("bank-b", "branch", "t-9"))
    seen = answer_of(lambda: b_stub.ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id="A-1", kind=PERSONAL, operator_id="lee"), timeout=30), hide=["A-1"])
    unknown = answer_of(lambda: b_stub.ChangeCustomerKind(C.ChangeCustomerKindRequest(
        customer_id="A-3", kind=PERSONAL, operator_id="lee"), timeout=30), hide=["A-3"])
    assert seen == unknown and seen[0] == "NOT_FOUND"
