"""The rules around a decision through a real gRPC channel, on SQLite and PostgreSQL: limits
(lowered online, raised at a branch, contracts), designated terminals, the incident list,
identity-input counters, inactivity, signatures by a branch-registered token, bad input and
privacy between institutions."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd.token import repository as token_repo
from authd.v1 import otp_pb2
from authd.v1 import policy_pb2 as P
from devices.policy.orders import Channel, Order, Purpose, Receiving
from tests.answers import answer_of
from tests.policy_bank import HOME_PC, NEW_PC, PHONE, Bank, codes_of, status_of

APPROVED = P.DECISION_APPROVED
DAY = 86400.0


def _edit(bank: Bank, sql: str, params: tuple[Any, ...]) -> None:
    """Make a customer's dates look old, as the passing of time would."""
    bank.srv.app.db.run(lambda tx: tx.execute(sql, params))


# --------------------------------------------------------------------------- limits

def test_limits_lowered_online_raised_only_at_a_branch(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("kim")
    otp = bank.otp("kim")
    bank.designate("kim")
    low = bank.backend.SetLimits(P.SetLimitsRequest(customer_id="kim",
                                                    per_transfer_krw=5_000_000,
                                                    daily_krw=20_000_000))
    safe = {g.grade: g for g in low.grades}[P.SECURITY_GRADE_PERSONAL_SAFE]
    assert (safe.per_transfer_krw, safe.daily_krw) == (5_000_000, 20_000_000)
    over = bank.transfer("kim", 5_000_001, otp=otp, code="000000")
    assert over.outcome == P.DECISION_OVER_LIMIT and over.per_transfer_limit_krw == 5_000_000
    raised = P.SetLimitsRequest(customer_id="kim", per_transfer_krw=50_000_000,
                                daily_krw=200_000_000)
    assert status_of(lambda: bank.backend.SetLimits(raised)) == grpc.StatusCode.PERMISSION_DENIED
    assert bank.view("kim").own_daily_krw == 20_000_000  # unchanged
    raised.operator_id = "teller-kim"
    bank.teller.SetLimits(raised)
    assert bank.transfer("kim", 50_000_000, otp=otp).outcome == APPROVED
    above = P.SetLimitsRequest(customer_id="kim", per_transfer_krw=200_000_000,
                               daily_krw=600_000_000, operator_id="teller-kim")
    assert status_of(lambda: bank.teller.SetLimits(above)) == grpc.StatusCode.PERMISSION_DENIED
    bank.teller.RecordContract(P.RecordContractRequest(
        customer_id="kim", reference="CONTRACT-2026-001", grade=P.SECURITY_GRADE_PERSONAL_SAFE,
        per_transfer_krw=300_000_000, daily_krw=1_000_000_000, operator_id="teller-kim"))
    bank.teller.SetLimits(above)
    d = bank.transfer("kim", 200_000_000, otp=otp, to_account="2")
    assert d.outcome == APPROVED and d.per_transfer_limit_krw == 200_000_000
    # a security-card transfer stays within the general grade whatever the own limits
    codes = bank.card("kim")
    card = bank.transfer("kim", 10_000_001, card=bank.challenge("kim", codes), to_account="3")
    assert card.outcome == P.DECISION_OVER_LIMIT and card.per_transfer_limit_krw == 10_000_000
    # the per-transfer limit may not exceed the daily one
    bad = P.SetLimitsRequest(customer_id="kim", per_transfer_krw=2, daily_krw=1)
    assert status_of(lambda: bank.backend.SetLimits(bad)) == grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------------------- terminals

def test_designated_terminals_listed_and_removed(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("lee")
    codes = bank.card("lee")
    pc = bank.designate("lee")
    assert pc.channel == "branch" and pc.device.mac == "00:1a:2b:3c:4d:5e"
    online = P.DesignateTerminalRequest(customer_id="lee", label="phone", device=PHONE)
    assert status_of(lambda: bank.backend.DesignateTerminal(online)) == (
        grpc.StatusCode.PERMISSION_DENIED)
    online.additional_done = P.ADDITIONAL_ARS
    phone = bank.backend.DesignateTerminal(online)
    assert phone.channel == "online"
    assert status_of(lambda: bank.designate("lee")) == grpc.StatusCode.ALREADY_EXISTS
    listed = bank.backend.ListTerminals(P.PolicyCustomerRef(customer_id="lee"))
    assert [t.terminal_id for t in listed.terminals] == [pc.terminal_id, phone.terminal_id]
    # the designated PC matches by MAC and HDD serial, whatever IP it has today
    moved = P.DeviceInfo()
    moved.CopyFrom(HOME_PC)
    moved.ip = "192.0.2.200"
    assert bank.transfer("lee", 1_000, device=moved,
                         card=bank.challenge("lee", codes)).outcome == APPROVED
    bank.backend.RemoveTerminal(P.RemoveTerminalRequest(customer_id="lee",
                                                        terminal_id=pc.terminal_id))
    d = bank.transfer("lee", 1_000, device=moved, card=bank.challenge("lee", codes),
                      to_account="2")
    assert d.outcome == P.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED
    assert status_of(lambda: bank.backend.RemoveTerminal(P.RemoveTerminalRequest(
        customer_id="lee", terminal_id=pc.terminal_id))) == grpc.StatusCode.NOT_FOUND
    assert bank.transfer("lee", 1_000, device=PHONE, card=bank.challenge("lee", codes),
                         to_account="3").outcome == APPROVED


def test_incident_list_fed_by_one_institution_refused_everywhere(server: Any, store_url: str):
    srv = server(store_url=store_url)
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    a.customer("kim")
    otp = a.otp("kim")
    a.designate("kim")
    listed = b.backend.ReportIncident(P.ReportIncidentRequest(
        device=P.DeviceInfo(mac="00-1a-2b-3c-4d-5e"), reason="certificate leaked from this PC"))
    assert [(i.field, i.value) for i in listed.incidents] == [("mac", "00:1a:2b:3c:4d:5e")]
    d = a.transfer("kim", 1_000, otp=otp)
    assert d.outcome == P.DECISION_DEVICE_ON_INCIDENT_LIST and d.consumed_krw == 0
    status = a.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=otp.serial))
    assert status.consecutive_failures == 0  # the code was not evaluated
    check = a.backend.CheckDevice(P.CheckDeviceRequest(device=HOME_PC))
    assert check.listed and list(check.fields) == ["mac"]
    # bank-a sees no entry of bank-b's and cannot withdraw it
    assert list(a.backend.ListIncidents(P.ListIncidentsRequest()).incidents) == []
    incident = listed.incidents[0].incident_id
    assert status_of(lambda: a.backend.WithdrawIncident(P.WithdrawIncidentRequest(
        incident_id=incident, reason="x"))) == grpc.StatusCode.NOT_FOUND
    # nor designate the listed terminal anywhere
    assert status_of(lambda: a.designate("kim", HOME_PC, "again")) in (
        grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.ALREADY_EXISTS)
    b.backend.WithdrawIncident(P.WithdrawIncidentRequest(incident_id=incident,
                                                         reason="cleaned and checked"))
    assert a.transfer("kim", 1_000, otp=otp, to_account="2").outcome == APPROVED
    assert not a.backend.CheckDevice(P.CheckDeviceRequest(device=HOME_PC)).listed


# --------------------------------------------------------------------------- counters

@pytest.mark.parametrize(("kind", "threshold"), [
    (P.INPUT_USER_PASSWORD, 3), (P.INPUT_CERTIFICATE_PASSWORD, 3),
    (P.INPUT_SECURITY_CARD_ANSWER, 3), (P.INPUT_ACCOUNT_PASSWORD, 5)])
def test_identity_input_counters(server: Any, store_url: str, kind: int, threshold: int):
    bank = Bank(server(store_url=store_url))
    bank.customer("park")
    otp = bank.otp("park")
    bank.designate("park")

    def report(correct: bool) -> P.InputCounter:
        return bank.backend.ReportInput(P.ReportInputRequest(customer_id="park", kind=kind,
                                                             correct=correct))

    for _ in range(threshold - 1):
        report(False)
    assert report(True).failures == 0  # a success resets the consecutive count
    for i in range(threshold):
        c = report(False)
        assert c.failures == i + 1 and c.restricted == (i + 1 == threshold)
    assert c.attempts_left == 0 and "restricted" in c.message
    assert report(True).restricted  # a right entry does not lift a restriction
    d = bank.transfer("park", 1_000, otp=otp)
    assert d.outcome == P.DECISION_MEDIUM_REFUSED and codes_of(d) == ["input_restricted"]
    online = P.UnlockInputRequest(customer_id="park", kind=kind, password_correct=True,
                                  identity_checked=True)
    if kind == P.INPUT_USER_PASSWORD:
        assert not bank.backend.UnlockInput(online).restricted
    else:
        assert status_of(lambda: bank.backend.UnlockInput(online)) == (
            grpc.StatusCode.PERMISSION_DENIED)
        online.operator_id = "teller-kim"
        assert not bank.teller.UnlockInput(online).restricted
    assert bank.transfer("park", 1_000, otp=otp, to_account="2").outcome == APPROVED


def test_online_unlock_needs_identity_check_and_a_personal_customer(server: Any):
    bank = Bank(server())
    bank.customer("corp", kind=P.CUSTOMER_KIND_CORPORATE)
    bank.customer("kim")
    for who in ("corp", "kim"):
        for _ in range(3):
            bank.backend.ReportInput(P.ReportInputRequest(customer_id=who,
                                                          kind=P.INPUT_USER_PASSWORD))
    half = P.UnlockInputRequest(customer_id="kim", kind=P.INPUT_USER_PASSWORD,
                                password_correct=True)
    assert status_of(lambda: bank.backend.UnlockInput(half)) == grpc.StatusCode.PERMISSION_DENIED
    corp = P.UnlockInputRequest(customer_id="corp", kind=P.INPUT_USER_PASSWORD,
                                password_correct=True, identity_checked=True)
    assert status_of(lambda: bank.backend.UnlockInput(corp)) == grpc.StatusCode.PERMISSION_DENIED
    assert all(k.restricted for k in bank.view("corp").counters
               if k.kind == P.INPUT_USER_PASSWORD)


def test_counters_are_exact_under_concurrency(server: Any, store_url: str):
    from concurrent.futures import ThreadPoolExecutor

    bank = Bank(server(store_url=store_url))
    bank.customer("choi")

    def wrong(_: int) -> P.InputCounter:
        return bank.backend.ReportInput(P.ReportInputRequest(
            customer_id="choi", kind=P.INPUT_ACCOUNT_PASSWORD), timeout=60)

    with ThreadPoolExecutor(16) as pool:
        seen = sorted(c.failures for c in pool.map(wrong, range(40)))
    assert seen[:5] == [1, 2, 3, 4, 5] and set(seen[5:]) == {5}
    records = bank.srv.app.db.run(lambda tx: bank.srv.app.audit.for_target(
        tx, "customer:choi", limit=1000), write=False)
    outcomes = Counter(r.outcome for r in records if r.action == "policy.input")
    assert outcomes == {"wrong": 4, "restricted": 1, "ignored_restricted": 35}
    assert {r.customer for r in records} == {"choi"}


# --------------------------------------------------------------------------- inactivity

def test_not_registered_within_five_days_is_suspended(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("late", register=False)
    otp = bank.otp("late")
    _edit(bank, "UPDATE policy_customers SET agreed_at = ? WHERE customer_id = 'late'",
          (time.time() - 4.9 * DAY,))
    assert bank.view("late").suspension == ""
    _edit(bank, "UPDATE policy_customers SET agreed_at = ? WHERE customer_id = 'late'",
          (time.time() - 5.1 * DAY,))
    d = bank.transfer("late", 1_000, otp=otp)
    assert d.outcome == P.DECISION_SUSPENDED and codes_of(d) == ["not_registered_in_time"]
    assert "5 days" in d.message
    register = P.PolicyCustomerRef(customer_id="late")
    assert status_of(lambda: bank.backend.RegisterInternetBanking(register)) == (
        grpc.StatusCode.PERMISSION_DENIED)
    lift = P.LiftSuspensionRequest(customer_id="late", channel=P.LIFT_ONLINE)
    assert status_of(lambda: bank.backend.LiftSuspension(lift)) == (
        grpc.StatusCode.PERMISSION_DENIED)  # no strong login
    lift.strong_login = True
    assert bank.backend.LiftSuspension(lift).suspension == ""
    bank.designate("late")
    assert bank.transfer("late", 1_000, otp=otp).outcome == APPROVED


def test_twelve_months_unused_is_suspended_and_lifted(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    bank.customer("idle")
    otp = bank.otp("idle")
    bank.designate("idle")
    assert bank.transfer("idle", 1_000, otp=otp).outcome == APPROVED
    last = time.time() - 366 * DAY
    _edit(bank, "UPDATE policy_customers SET agreed_at = ?, registered_at = ?,"
                " last_used_at = ? WHERE customer_id = 'idle'", (last, last, last))
    d = bank.transfer("idle", 1_000, otp=otp, to_account="2")
    assert d.outcome == P.DECISION_SUSPENDED and codes_of(d) == ["unused"]
    young = P.LiftSuspensionRequest(customer_id="idle", channel=P.LIFT_CALL_CENTRE, age=13)
    assert status_of(lambda: bank.backend.LiftSuspension(young)) == (
        grpc.StatusCode.PERMISSION_DENIED)
    young.age = 14
    assert bank.backend.LiftSuspension(young).suspension == ""
    assert bank.transfer("idle", 1_000, otp=otp, to_account="3").outcome == APPROVED
    # a corporate customer is lifted online or at a branch, not by the call centre
    bank.customer("corp", kind=P.CUSTOMER_KIND_CORPORATE)
    _edit(bank, "UPDATE policy_customers SET registered_at = ? WHERE customer_id = 'corp'",
          (last,))
    call = P.LiftSuspensionRequest(customer_id="corp", channel=P.LIFT_CALL_CENTRE, age=40)
    assert status_of(lambda: bank.backend.LiftSuspension(call)) == (
        grpc.StatusCode.PERMISSION_DENIED)
    branch = P.LiftSuspensionRequest(customer_id="corp", channel=P.LIFT_BRANCH,
                                     operator_id="teller-kim")
    assert bank.teller.LiftSuspension(branch).suspension == ""


# --------------------------------------------------------------------------- signatures

def _token(bank: Bank, customer: str, serial: str) -> ec.EllipticCurvePrivateKey:
    """A key pair as a token holds it, its branch registration row and its link."""
    key = ec.generate_private_key(ec.SECP256R1())
    bank.srv.app.db.run(lambda tx: token_repo.REGISTRATIONS.insert(
        tx, institution=bank.institution, serial=serial, customer_id=customer,
        terminal="teller-pc-1", operator="teller-kim", now=time.time()))
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    bank.link(customer, P.POLICY_MEDIUM_TOKEN, serial, spki)
    return key


def test_branch_registered_token_signature_exempts(server: Any, store_url: str):
    from cryptography.hazmat.primitives import hashes

    bank = Bank(server(store_url=store_url))
    bank.customer("han")
    codes = bank.card("han")
    key = _token(bank, "han", "TOKEN-0001")
    idem = bank.key()
    order = Order("bank-a", "han", Purpose.TRANSFER, 3_000_000, Receiving.OTHER, "110-1",
                  Channel.INTERNET_BANKING, idem)
    signature = key.sign(order.signing_bytes(), ec.ECDSA(hashes.SHA256()))
    sig = P.SignaturePresented(medium=P.POLICY_MEDIUM_TOKEN, serial="TOKEN-0001",
                               signature=signature)
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-1", key=idem,
                      card=bank.challenge("han", codes), signature=sig)
    assert d.outcome == APPROVED and list(d.exemptions) == ["branch_token"]
    forged = P.SignaturePresented(medium=P.POLICY_MEDIUM_TOKEN, serial="TOKEN-0001",
                                  signature=key.sign(b"another order", ec.ECDSA(hashes.SHA256())))
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-2",
                      card=bank.challenge("han", codes), signature=forged)
    assert d.outcome == P.DECISION_AUTHENTICATION_FAILED and codes_of(d) == ["bad_signature"]
    unknown = P.SignaturePresented(medium=P.POLICY_MEDIUM_TOKEN, serial="TOKEN-0002",
                                   signature=signature)
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-3",
                      card=bank.challenge("han", codes), signature=unknown)
    assert d.outcome == P.DECISION_MEDIUM_REFUSED
    assert codes_of(d) == ["token_not_registered_at_branch"]


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize(("change", "field"), [
    ({"amount_krw": -1}, "amount_krw"), ({"amount_krw": 0}, "amount_krw"),
    ({"amount_krw": 10**18}, "amount_krw"), ({"customer_id": ""}, "customer_id"),
    ({"customer_id": "a b"}, "customer_id"), ({"idempotency_key": "short"}, "idempotency_key"),
    ({"receiving": 0}, "receiving"), ({"channel": 99}, "channel"),
    ({"to_account": ""}, "to_account"),
    ({"device": P.DeviceInfo(mac="00:1a:2b:3c:4d")}, "device.mac"),
    ({"device": P.DeviceInfo(ip="999.1.1.1")}, "device.ip"),
    ({"device": P.DeviceInfo(ip="10.0.0.1\n")}, "device.ip"),
    ({"device": P.DeviceInfo(hdd_serial="x" * 65)}, "device.hdd_serial"),
    ({"device": P.DeviceInfo()}, "device"),
    ({"otp": P.OtpPresented(serial="OTP-1", code="12ab56")}, "otp.code"),
])
def test_bad_requests_are_clear_and_consume_nothing(server: Any, store_url: str,
                                                    change: dict[str, Any], field: str):
    from authd.errors import details_of

    bank = Bank(server(store_url=store_url))
    bank.customer("kim")
    otp = bank.otp("kim")
    bank.designate("kim")
    request = P.AuthorizeTransferRequest(
        customer_id="kim", amount_krw=1_000, receiving=P.RECEIVING_OTHER, to_account="1",
        channel=P.CHANNEL_INTERNET_BANKING, device=HOME_PC, idempotency_key=bank.key(),
        otp=P.OtpPresented(serial=otp.serial, code=otp.next_code()))
    for name, value in change.items():
        if isinstance(value, P.DeviceInfo | P.OtpPresented):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    with pytest.raises(grpc.RpcError) as err:
        bank.backend.AuthorizeTransfer(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(err.value).field == field, err.value.details()
    assert err.value.details() and "Traceback" not in err.value.details()
    assert bank.view("kim").used_today_krw == 0
    status = bank.otp_teller.GetStatus(otp_pb2.GetStatusRequest(serial=otp.serial))
    assert status.consecutive_failures == 0
    # the code the bad request carried still works: nothing was evaluated
    request.CopyFrom(P.AuthorizeTransferRequest(
        customer_id="kim", amount_krw=1_000, receiving=P.RECEIVING_OTHER, to_account="1",
        channel=P.CHANNEL_INTERNET_BANKING, device=HOME_PC, idempotency_key=bank.key(),
        otp=P.OtpPresented(serial=otp.serial, code=otp.next_code())))
    assert bank.backend.AuthorizeTransfer(request).outcome == APPROVED


def test_unknown_customer_and_roles(server: Any, store_url: str):
    bank = Bank(server(store_url=store_url))
    with pytest.raises(grpc.RpcError) as err:
        bank.transfer("nobody", 1_000)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    bank.customer("kim")
    # a branch may not ask for a decision, a backend may not record an agreement
    assert status_of(lambda: bank.teller.AuthorizeTransfer(P.AuthorizeTransferRequest(
        customer_id="kim"))) == grpc.StatusCode.PERMISSION_DENIED
    assert status_of(lambda: bank.backend.SetupCustomer(P.SetupCustomerRequest(
        customer_id="x", kind=P.CUSTOMER_KIND_PERSONAL))) == grpc.StatusCode.PERMISSION_DENIED
    assert status_of(lambda: bank.customer("kim")) == grpc.StatusCode.ALREADY_EXISTS


# --------------------------------------------------------------------------- privacy

def test_an_institution_never_sees_another_institutions_customers(server: Any,
                                                                  store_url: str):
    srv = server(store_url=store_url)
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    a.customer("kim")
    otp = a.otp("kim")
    a.designate("kim")
    d = a.transfer("kim", 1_000, otp=otp)
    for _ in range(2):
        a.backend.ReportInput(P.ReportInputRequest(customer_id="kim",
                                                   kind=P.INPUT_USER_PASSWORD))
    calls = {
        "GetCustomer": lambda s, c: s.GetCustomer(P.PolicyCustomerRef(customer_id=c)),
        "ListTerminals": lambda s, c: s.ListTerminals(P.PolicyCustomerRef(customer_id=c)),
        "ReportInput": lambda s, c: s.ReportInput(P.ReportInputRequest(
            customer_id=c, kind=P.INPUT_USER_PASSWORD)),
        "ExportRecords": lambda s, c: s.ExportRecords(P.ExportRecordsRequest(customer_id=c)),
        "SetLimits": lambda s, c: s.SetLimits(P.SetLimitsRequest(
            customer_id=c, per_transfer_krw=1, daily_krw=1)),
        "AuthorizeTransfer": lambda s, c: s.AuthorizeTransfer(P.AuthorizeTransferRequest(
            customer_id=c, amount_krw=1, receiving=P.RECEIVING_OTHER, to_account="1",
            channel=P.CHANNEL_INTERNET_BANKING, device=HOME_PC,
            idempotency_key="privacy-probe-1")),
    }
    for name, call in calls.items():
        known = answer_of(lambda call=call: call(b.backend, "kim"), hide=["kim"])
        unknown = answer_of(lambda call=call: call(b.backend, "nobody"), hide=["nobody"])
        assert known == unknown, name
        assert known[0] == "NOT_FOUND", name
    for rpc in ("ExplainDecision", "CancelTransfer"):
        request = (P.ExplainDecisionRequest if rpc == "ExplainDecision"
                   else P.CancelTransferRequest)(decision_id=d.decision_id)
        assert status_of(lambda rpc=rpc, request=request: getattr(b.backend, rpc)(request)) == (
            grpc.StatusCode.NOT_FOUND)
    # bank-a's counter and total are untouched by bank-b's attempts
    view = a.view("kim")
    assert view.used_today_krw == 1_000
    assert [k.failures for k in view.counters if k.kind == P.INPUT_USER_PASSWORD] == [2]
    # the same reference at bank-b is bank-b's own customer, with nothing of bank-a's
    b.customer("kim")
    theirs = b.view("kim")
    assert theirs.used_today_krw == 0 and list(theirs.media) == []
    assert all(k.failures == 0 for k in theirs.counters)
