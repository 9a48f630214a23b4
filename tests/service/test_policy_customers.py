"""The rules around a decision through a real gRPC channel, on SQLite and PostgreSQL: limits
(lowered online, raised at a branch, contracts), designated terminals, the incident list,
identity-input counters, inactivity, signatures by a branch-registered token, bad input and
privacy between institutions."""

from __future__ import annotations

import datetime
import time
from collections import Counter
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd.v1 import customer_pb2 as C
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


def test_incident_list_is_fed_by_every_institution(server: Any, store_url: str):
    """Two institutions list the same identifier, each its own entry: one withdrawing its
    entry leaves the other's in force; the terminal is refused while any entry lives."""
    srv = server(store_url=store_url)
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    a.customer("kim")
    otp = a.otp("kim")
    a.designate("kim")
    report = P.ReportIncidentRequest(device=P.DeviceInfo(mac="00:1A:2B:3C:4D:5E"),
                                     reason="phishing")
    theirs = b.backend.ReportIncident(report).incidents[0]
    mine = a.backend.ReportIncident(report).incidents[0]
    assert mine.incident_id != theirs.incident_id and mine.field == "mac"
    # reporting again keeps the caller's one entry
    assert a.backend.ReportIncident(report).incidents[0].incident_id == mine.incident_id
    assert [i.incident_id for i in a.backend.ListIncidents(
        P.ListIncidentsRequest()).incidents] == [mine.incident_id]
    assert [i.incident_id for i in b.backend.ListIncidents(
        P.ListIncidentsRequest()).incidents] == [theirs.incident_id]
    b.backend.WithdrawIncident(P.WithdrawIncidentRequest(incident_id=theirs.incident_id,
                                                         reason="resolved at bank-b"))
    d = a.transfer("kim", 1_000, otp=otp)
    assert d.outcome == P.DECISION_DEVICE_ON_INCIDENT_LIST and d.consumed_krw == 0
    assert b.backend.CheckDevice(P.CheckDeviceRequest(device=HOME_PC)).listed
    a.backend.WithdrawIncident(P.WithdrawIncidentRequest(incident_id=mine.incident_id,
                                                         reason="resolved"))
    assert not b.backend.CheckDevice(P.CheckDeviceRequest(device=HOME_PC)).listed
    assert a.transfer("kim", 1_000, otp=otp, to_account="2").outcome == APPROVED


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

def _key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A key pair as a token or smartcard holds it, and its DER SubjectPublicKeyInfo."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)


def _signed(bank: Bank, customer: str, medium: int, serial: str,
            key: ec.EllipticCurvePrivateKey, account: str,
            data: bytes | None = None) -> tuple[P.SignaturePresented, str]:
    idem = bank.key()
    order = Order("bank-a", customer, Purpose.TRANSFER, 3_000_000, Receiving.OTHER, account,
                  Channel.INTERNET_BANKING, idem)
    signature = key.sign(data or order.signing_bytes(), ec.ECDSA(hashes.SHA256()))
    return P.SignaturePresented(medium=medium, serial=serial, signature=signature), idem


def test_branch_registered_token_signature_exempts(server: Any, store_url: str):
    """The key is the one kept with the token's branch registration (the customer model):
    registered with it, the signature verifies and exempts; a forged signature, a token
    registered without a key, for another customer, or deregistered, does not."""
    bank = Bank(server(store_url=store_url))
    bank.customer("han")
    bank.customer("oh")
    codes = bank.card("han")
    key, spki = _key()
    reg = bank.register_medium("han", C.MEDIUM_KIND_HSM_TOKEN, "TOKEN-0001", spki)
    assert reg.public_key == spki
    sig, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0001", key, "110-1")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-1", key=idem,
                      card=bank.challenge("han", codes), signature=sig)
    assert d.outcome == APPROVED and list(d.exemptions) == ["branch_token"]
    forged, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0001", key, "110-2",
                           data=b"another order")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-2", key=idem,
                      card=bank.challenge("han", codes), signature=forged)
    assert d.outcome == P.DECISION_AUTHENTICATION_FAILED and codes_of(d) == ["bad_signature"]
    unknown, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0002", key, "110-3")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-3", key=idem,
                      card=bank.challenge("han", codes), signature=unknown)
    assert d.outcome == P.DECISION_MEDIUM_REFUSED
    assert codes_of(d) == ["token_not_registered_at_branch"]
    # registered without its key: nothing to check a signature with
    bank.register_medium("han", C.MEDIUM_KIND_HSM_TOKEN, "TOKEN-0003")
    nokey, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0003", key, "110-4")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-4", key=idem,
                      card=bank.challenge("han", codes), signature=nokey)
    assert codes_of(d) == ["token_not_registered_at_branch"]
    # another customer's token of this institution is not han's
    other_key, other_spki = _key()
    bank.register_medium("oh", C.MEDIUM_KIND_HSM_TOKEN, "TOKEN-0004", other_spki)
    theirs, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0004", other_key,
                           "110-5")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-5", key=idem,
                      card=bank.challenge("han", codes), signature=theirs)
    assert codes_of(d) == ["token_not_registered_at_branch"]
    # deregistered at the branch: its key no longer counts
    bank.registrations_teller.DeregisterMedium(C.DeregisterMediumRequest(
        kind=C.MEDIUM_KIND_HSM_TOKEN, serial="TOKEN-0001", customer_id="han",
        operator_id="teller-kim", reason="lost"))
    again, idem = _signed(bank, "han", P.POLICY_MEDIUM_TOKEN, "TOKEN-0001", key, "110-6")
    d = bank.transfer("han", 3_000_000, device=NEW_PC, to_account="110-6", key=idem,
                      card=bank.challenge("han", codes), signature=again)
    assert codes_of(d) == ["token_not_registered_at_branch"]
    assert all(m.serial != "TOKEN-0001" for m in bank.view("han").media)


def test_a_softhsm_token_registered_with_its_key_signs_a_transfer(server: Any,
                                                                   store_url: str):
    """The whole way on a real token (SoftHSM2): a key pair generated on the token, the token
    registered at a branch with that key (RegisterToken reads its public key from the token),
    the order signed on the token; the decision checks it against the registration's key."""
    import uuid

    from authd.v1 import token_pb2 as T
    from authd.v1 import token_pb2_grpc
    from simulators.token.softhsm import process_env

    token = process_env().init_token(f"pol-{uuid.uuid4().hex[:8]}")
    bank = Bank(server(store_url=store_url, token={"poll_interval": 0.1,
                                                   "rescan_interval": 0.1}))
    bank.customer("hwang")
    codes = bank.card("hwang")
    tokens = token_pb2_grpc.TokenServiceStub(bank.srv.channel("bank-a", "branch", "teller-1"))
    session = tokens.Login(T.TokenLoginRequest(token_serial=token.serial, pin=token.pin)).session
    key = tokens.GenerateKeyPair(T.TokenGenerateKeyPairRequest(
        session=session, spec=T.TOKEN_KEY_SPEC_EC_P256, label="transfers"))
    with pytest.raises(grpc.RpcError) as err:  # a key the token does not hold
        tokens.RegisterToken(T.RegisterTokenRequest(session=session, customer_id="hwang",
                                                    operator="teller-kim", key_id=b"nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    reg = tokens.RegisterToken(T.RegisterTokenRequest(
        session=session, customer_id="hwang", operator="teller-kim", key_id=key.key_id))
    assert reg.public_key == key.public_key_der
    idem = bank.key()
    order = Order("bank-a", "hwang", Purpose.TRANSFER, 2_000_000, Receiving.OTHER, "110-7",
                  Channel.INTERNET_BANKING, idem)
    signed = tokens.Sign(T.TokenSignRequest(session=session, key_id=key.key_id,
                                            data=order.signing_bytes()))
    d = bank.transfer("hwang", 2_000_000, device=NEW_PC, to_account="110-7", key=idem,
                      card=bank.challenge("hwang", codes),
                      signature=P.SignaturePresented(medium=P.POLICY_MEDIUM_TOKEN,
                                                     serial=token.serial,
                                                     signature=signed.signature))
    assert d.outcome == APPROVED and list(d.exemptions) == ["branch_token"]
    tokens.Logout(T.TokenLogoutRequest(session=session))


def test_smartcard_signature_verifies_but_does_not_exempt(server: Any, store_url: str):
    """EFT art. 14(1)6 names HSM tokens: a smartcard registered at a branch signs a transfer
    with its registered key (a PEM certificate given at registration), but the terminal
    still needs to be designated or the transfer confirmed."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    bank = Bank(server(store_url=store_url))
    bank.customer("yun")
    codes = bank.card("yun")
    key, _spki = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "yun")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(datetime.datetime(2025, 1, 1))
            .not_valid_after(datetime.datetime(2035, 1, 1))
            .sign(key, hashes.SHA256()))
    guid = "00112233445566778899AABBCCDDEEFF"
    reg = bank.register_medium("yun", C.MEDIUM_KIND_SMARTCARD, guid,
                               cert.public_bytes(serialization.Encoding.PEM))
    assert reg.public_key == _spki
    sig, idem = _signed(bank, "yun", P.POLICY_MEDIUM_SMARTCARD, guid, key, "110-1")
    d = bank.transfer("yun", 3_000_000, device=NEW_PC, to_account="110-1", key=idem,
                      card=bank.challenge("yun", codes), signature=sig)
    assert d.outcome == P.DECISION_ADDITIONAL_AUTHENTICATION_REQUIRED
    sig, idem = _signed(bank, "yun", P.POLICY_MEDIUM_SMARTCARD, guid, key, "110-1")
    d = bank.transfer("yun", 3_000_000, device=NEW_PC, to_account="110-1", key=idem,
                      card=bank.challenge("yun", codes), signature=sig,
                      additional_done=P.ADDITIONAL_SMS)
    assert d.outcome == APPROVED and list(d.exemptions) == []
    forged, idem = _signed(bank, "yun", P.POLICY_MEDIUM_SMARTCARD, guid, key, "110-2",
                           data=b"x")
    d = bank.transfer("yun", 3_000_000, device=HOME_PC, to_account="110-2", key=idem,
                      card=bank.challenge("yun", codes), signature=forged)
    assert codes_of(d) == ["bad_signature"]


def test_registering_a_malformed_key_is_refused(server: Any, store_url: str):
    from authd.errors import details_of

    bank = Bank(server(store_url=store_url))
    call = C.RegisterMediumRequest(kind=C.MEDIUM_KIND_HSM_TOKEN, serial="TOKEN-9",
                                   customer_id="kim", operator_id="teller-kim",
                                   public_key=b"not a key")
    with pytest.raises(grpc.RpcError) as err:
        bank.registrations_teller.RegisterMedium(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(err.value).field == "public_key"
    listed = bank.registrations_teller.ListRegistrations(C.ListRegistrationsRequest(
        customer_id="kim", include_ended=True))
    assert list(listed.registrations) == []


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
