"""The OTP center through a real gRPC channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import code_pb2

from authd.errors import details_of_status
from authd.v1 import otp_pb2, otp_pb2_grpc, system_pb2, system_pb2_grpc
from simulators.otp.generator import DisplayToken

O = otp_pb2  # noqa: E741


class Bank:
    """Stubs for one institution's teller (branch) and backend."""

    def __init__(self, srv, institution: str) -> None:
        self.name = institution
        self.branch = otp_pb2_grpc.OtpServiceStub(srv.channel(institution, "branch", "teller"))
        self.backend = otp_pb2_grpc.OtpServiceStub(srv.channel(institution, "backend", "ib"))


@pytest.fixture
def banks(server, store_url):
    srv = server(store_url=store_url)
    return srv, Bank(srv, "bank-a"), Bank(srv, "bank-b"), Bank(srv, "bank-c")


def operations(srv) -> otp_pb2_grpc.OtpServiceStub:
    """The center's operations (admin role): sees every registration."""
    return otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin", "ops-1"))


def enroll(bank: Bank, serial: str, kind=O.OTP_KIND_TOTP, customer: str = "C-1",
           **params) -> DisplayToken:
    resp = bank.branch.Enroll(O.EnrollRequest(
        customer_id=customer, serial=serial, operator_id="op-1",
        parameters=O.OtpParameters(kind=kind, **params)))
    assert resp.generated_seed and resp.provisioning_uri.startswith("otpauth://")
    return DisplayToken.from_uri(resp.provisioning_uri, serial)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**len(code):0{len(code)}d}"


def verify(bank: Bank, serial: str, code: str) -> otp_pb2.VerifyResponse:
    return bank.backend.Verify(O.VerifyRequest(serial=serial, code=code))


def test_cross_institution_lockout_scenario(banks):
    """The README scenario: 4 wrong at A + 6 wrong at B lock the device at A, B and C."""
    srv, a, b, c = banks
    token = enroll(a, "OTP-0001")
    b.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0001", operator_id="op-b"))
    c.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0001", operator_id="op-c"))

    ok = verify(b, "OTP-0001", token.show())
    assert ok.outcome == O.VERIFY_OUTCOME_ACCEPTED and ok.attempts_left == 10

    bad = wrong(token.show())
    for n in range(1, 5):
        r = verify(a, "OTP-0001", bad)
        assert (r.outcome, r.consecutive_failures, r.attempts_left) == \
            (O.VERIFY_OUTCOME_WRONG_CODE, n, 10 - n)
    for n in range(5, 11):
        r = verify(b, "OTP-0001", bad)
        assert r.outcome == O.VERIFY_OUTCOME_WRONG_CODE and r.consecutive_failures == n
    assert r.attempts_left == 0 and "locked" in r.message

    status = c.backend.GetStatus(O.GetStatusRequest(serial="OTP-0001"))
    assert status.state == O.DEVICE_STATE_LOCKED and status.consecutive_failures == 10
    # Each institution sees the shared total, its own registration and share only.
    for bank, share in ((a, 4), (b, 6), (c, 0)):
        mine = bank.backend.GetStatus(O.GetStatusRequest(serial="OTP-0001"))
        assert mine.consecutive_failures == 10 and mine.attempts_left == 0
        assert [(r.institution, r.failures_here) for r in mine.registrations] == [
            (bank.name, share)]
        assert mine.issuer == ("bank-a" if bank is a else "")
    everything = operations(srv).GetStatus(O.GetStatusRequest(serial="OTP-0001"))
    per_bank = {reg.institution: reg.failures_here for reg in everything.registrations}
    assert per_bank == {"bank-a": 4, "bank-b": 6, "bank-c": 0}
    assert everything.issuer == "bank-a"

    # No oracle: right and wrong codes get the same answer everywhere.
    for bank in (a, b, c):
        for code in (token.code_at(time.time() + 60), bad):
            r = verify(bank, "OTP-0001", code)
            assert (r.outcome, r.consecutive_failures) == (O.VERIFY_OUTCOME_LOCKED, 10)

    # Only a branch unlocks, with operator and reason.
    with pytest.raises(grpc.RpcError) as err:
        c.backend.Unlock(O.UnlockRequest(serial="OTP-0001", operator_id="x", reason="y"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        c.branch.Unlock(O.UnlockRequest(serial="OTP-0001", operator_id="op-c"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    unlocked = c.branch.Unlock(O.UnlockRequest(serial="OTP-0001", operator_id="op-c",
                                               reason="customer identified in person"))
    assert unlocked.state == O.DEVICE_STATE_ACTIVE and unlocked.consecutive_failures == 0
    assert verify(a, "OTP-0001", token.code_at(time.time() + 60)).outcome == \
        O.VERIFY_OUTCOME_ACCEPTED

    # A loss report at any registered institution stops it everywhere, at once.
    lost = b.backend.ReportLost(O.ReportLostRequest(serial="OTP-0001", reason="stolen"))
    assert lost.state == O.DEVICE_STATE_REPORTED_LOST
    for bank in (a, b, c):
        assert verify(bank, "OTP-0001", token.show()).outcome == O.VERIFY_OUTCOME_REPORTED_LOST
    with pytest.raises(grpc.RpcError) as err:
        b.backend.WithdrawLossReport(O.WithdrawLossReportRequest(
            serial="OTP-0001", operator_id="x", reason="found"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    back = a.branch.WithdrawLossReport(O.WithdrawLossReportRequest(
        serial="OTP-0001", operator_id="op-a", reason="found it, holder present"))
    assert back.state == O.DEVICE_STATE_ACTIVE


def test_success_resets_the_shared_counter(banks):
    _, a, b, _ = banks
    token = enroll(a, "OTP-0002", kind=O.OTP_KIND_HOTP)
    b.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0002", operator_id="op"))
    bad = unused_hotp_code(token)
    for n in range(1, 10):
        r = verify(a if n % 2 else b, "OTP-0002", bad)
        assert r.outcome == O.VERIFY_OUTCOME_WRONG_CODE and r.consecutive_failures == n
    r = verify(b, "OTP-0002", token.press())
    assert r.outcome == O.VERIFY_OUTCOME_ACCEPTED and r.consecutive_failures == 0
    # The same HOTP code again is a replay, not a failure.
    again = verify(b, "OTP-0002", token_at(token, token.counter - 1))
    assert again.outcome == O.VERIFY_OUTCOME_REPLAYED and again.consecutive_failures == 0
    assert verify(a, "OTP-0002", bad).consecutive_failures == 1


def unused_hotp_code(token: DisplayToken, span: int = 64) -> str:
    """A code that no counter near the token's matches: always wrong."""
    near = {token_at(token, c) for c in range(span)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in near)


def token_at(token: DisplayToken, counter: int) -> str:
    clone = DisplayToken(token.serial, token.seed, "hotp", token.digits, counter=counter)
    return clone.press()


def test_totp_replay_is_refused(banks):
    _, a, _, _ = banks
    token = enroll(a, "OTP-0003")
    code = token.show()
    assert verify(a, "OTP-0003", code).outcome == O.VERIFY_OUTCOME_ACCEPTED
    assert verify(a, "OTP-0003", code).outcome == O.VERIFY_OUTCOME_REPLAYED


def test_registration_rules(banks):
    srv, a, b, c = banks
    token = enroll(a, "OTP-0004")
    # Not registered at B yet: B's backend gets the outcome, without counters, nothing counted.
    r = verify(b, "OTP-0004", "123456")
    assert r.outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    assert (r.consecutive_failures, r.attempts_left) == (0, 0)
    # B's backend cannot read the device's data.
    with pytest.raises(grpc.RpcError) as err:
        b.backend.GetStatus(O.GetStatusRequest(serial="OTP-0004"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Online registration needs the customer's strong login and the device's current code.
    with pytest.raises(grpc.RpcError) as err:
        b.backend.Register(O.RegisterRequest(customer_id="C-1",
                                             serial="OTP-0004", strong_authentication=True))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "code" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        b.backend.Register(O.RegisterRequest(customer_id="C-1",
                                             serial="OTP-0004", code=token.show()))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    online = b.backend.Register(O.RegisterRequest(customer_id="C-1",
                                                  serial="OTP-0004", code=token.show(),
                                                  strong_authentication=True))
    assert [(r.institution, r.channel) for r in online.registrations] == [
        ("bank-b", O.REGISTRATION_CHANNEL_ONLINE)]
    with pytest.raises(grpc.RpcError) as err:
        b.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0004", operator_id="op"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # A branch registers without a code: the teller checks ID and device in person.
    with pytest.raises(grpc.RpcError) as err:
        c.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0004", operator_id="op",
                                            code="123456"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A lost device cannot be registered online anywhere (not even with the right code); at a
    # branch it can.
    a.backend.ReportLost(O.ReportLostRequest(serial="OTP-0004", reason="lost"))
    with pytest.raises(grpc.RpcError) as err:
        c.backend.Register(O.RegisterRequest(customer_id="C-1",
                                             serial="OTP-0004", code=token.code_at(
            time.time() + 60), strong_authentication=True))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "branch" in err.value.details()
    c.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0004", operator_id="op-c"))
    # Deregistration ends verification there.
    c.branch.Deregister(O.DeregisterRequest(serial="OTP-0004", operator_id="op-c"))
    assert verify(c, "OTP-0004", "123456").outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    registered = operations(srv).GetStatus(O.GetStatusRequest(serial="OTP-0004"))
    assert {r.institution for r in registered.registrations} == {"bank-a", "bank-b"}


def test_each_registration_names_its_institutions_customer(banks):
    """A's, B's and C's references of the customer are each shown to their institution only;
    operations see the registrations but no institution's customer reference."""
    srv, a, b, c = banks
    token = enroll(a, "OTP-0020", customer="A-77")
    b.branch.Register(O.RegisterRequest(customer_id="B-1234", serial="OTP-0020",
                                        operator_id="op"))
    c.backend.Register(O.RegisterRequest(customer_id="C:55", serial="OTP-0020",
                                         code=token.show(), strong_authentication=True))
    for bank, customer in ((a, "A-77"), (b, "B-1234"), (c, "C:55")):
        for stub in (bank.branch, bank.backend):
            seen = stub.GetStatus(O.GetStatusRequest(serial="OTP-0020"))
            assert [(r.institution, r.customer_id) for r in seen.registrations] == [
                (bank.name, customer)]
    ops = operations(srv).GetStatus(O.GetStatusRequest(serial="OTP-0020"))
    assert sorted((r.institution, r.customer_id) for r in ops.registrations) == [
        ("bank-a", ""), ("bank-b", ""), ("bank-c", "")]
    # A reissue by B carries each institution's reference to the new device.
    b.branch.Replace(O.ReplaceRequest(old_serial="OTP-0020", new_serial="OTP-0021",
                                      reason=O.REPLACE_REASON_REISSUE, operator_id="op"))
    for bank, customer in ((a, "A-77"), (b, "B-1234"), (c, "C:55")):
        seen = bank.backend.GetStatus(O.GetStatusRequest(serial="OTP-0021"))
        assert [(r.institution, r.customer_id) for r in seen.registrations] == [
            (bank.name, customer)]
    # After a warranty expiry the new device is A's only, still for A's customer.
    new = a.branch.Replace(O.ReplaceRequest(old_serial="OTP-0021", new_serial="OTP-0022",
                                            reason=O.REPLACE_REASON_WARRANTY_EXPIRED,
                                            operator_id="op")).new_device
    assert [(r.institution, r.customer_id) for r in new.registrations] == [("bank-a", "A-77")]


def test_a_registration_from_before_customer_references_gets_one(banks):
    """Registrations made before migration 0070 name no customer; a branch names it once."""
    srv, a, b, _ = banks
    enroll(a, "OTP-0030", customer="A-1")
    b.branch.Register(O.RegisterRequest(customer_id="B-1", serial="OTP-0030", operator_id="op"))
    srv.app.db.run(lambda tx: tx.execute(
        "UPDATE otp_registrations SET customer_id = '' WHERE serial = ? AND institution = ?",
        ("OTP-0030", "bank-b")))
    seen = b.backend.GetStatus(O.GetStatusRequest(serial="OTP-0030"))
    assert [r.customer_id for r in seen.registrations] == [""]
    with pytest.raises(grpc.RpcError) as err:
        b.backend.AssignCustomer(O.AssignCustomerRequest(serial="OTP-0030", customer_id="B-7",
                                                         operator_id="op"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assigned = b.branch.AssignCustomer(O.AssignCustomerRequest(
        serial="OTP-0030", customer_id="B-7", operator_id="op"))
    assert [(r.institution, r.customer_id) for r in assigned.registrations] == [
        ("bank-b", "B-7")]
    # Once named, a reference stays: here and at the institution that always had one.
    for bank in (a, b):
        with pytest.raises(grpc.RpcError) as err:
            bank.branch.AssignCustomer(O.AssignCustomerRequest(
                serial="OTP-0030", customer_id="X-1", operator_id="op"))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    at_a = a.backend.GetStatus(O.GetStatusRequest(serial="OTP-0030"))
    assert [r.customer_id for r in at_a.registrations] == ["A-1"]
    audit = system_pb2_grpc.SystemServiceStub(srv.channel("bank-b", "branch", "teller"))
    trail = audit.ListAudit(system_pb2.ListAuditRequest(target="OTP-0030")).entries
    assert [e.action for e in trail if e.action == "otp.assign_customer"] == [
        "otp.assign_customer"]


def test_reissue_carries_registrations_warranty_expiry_does_not(banks):
    srv, a, b, _c = banks
    old = enroll(a, "OTP-0005")
    b.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-0005", operator_id="op"))
    resp = b.branch.Replace(O.ReplaceRequest(old_serial="OTP-0005", new_serial="OTP-0006",
                                             reason=O.REPLACE_REASON_REISSUE, operator_id="op"))
    assert resp.old_device.state == O.DEVICE_STATE_REPLACED
    assert resp.old_device.replaced_by == "OTP-0006"
    assert [r.institution for r in resp.new_device.registrations] == ["bank-b"]
    carried = operations(srv).GetStatus(O.GetStatusRequest(serial="OTP-0006"))
    assert {r.institution for r in carried.registrations} == {"bank-a", "bank-b"}
    # Reissued by B: A sees its registration carried over, but not who issued the new device.
    at_a = a.backend.GetStatus(O.GetStatusRequest(serial="OTP-0006"))
    assert [r.institution for r in at_a.registrations] == ["bank-a"] and at_a.issuer == ""
    new = DisplayToken.from_uri(resp.provisioning_uri, "OTP-0006")
    assert verify(a, "OTP-0005", old.show()).outcome == O.VERIFY_OUTCOME_EXPIRED_OR_REPLACED
    assert verify(a, "OTP-0006", new.show()).outcome == O.VERIFY_OUTCOME_ACCEPTED

    resp = a.branch.Replace(O.ReplaceRequest(old_serial="OTP-0006", new_serial="OTP-0007",
                                             reason=O.REPLACE_REASON_WARRANTY_EXPIRED,
                                             operator_id="op"))
    assert resp.old_device.state == O.DEVICE_STATE_EXPIRED
    assert [r.institution for r in resp.new_device.registrations] == ["bank-a"]
    newer = DisplayToken.from_uri(resp.provisioning_uri, "OTP-0007")
    assert verify(b, "OTP-0007", newer.show()).outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    # The new device is not registered at B: B does not learn its serial.
    old_at_b = b.backend.GetStatus(O.GetStatusRequest(serial="OTP-0006"))
    assert old_at_b.state == O.DEVICE_STATE_EXPIRED and old_at_b.replaced_by == ""
    assert resp.old_device.replaced_by == "OTP-0007"


def test_resync_from_two_consecutive_codes(banks):
    _, a, _, _ = banks
    token = enroll(a, "OTP-0008", kind=O.OTP_KIND_HOTP)
    for _ in range(40):  # pressed many times away from the bank: beyond the look-ahead
        token.press()
    lost_code = token.press()
    assert verify(a, "OTP-0008", lost_code).outcome == O.VERIFY_OUTCOME_WRONG_CODE
    with pytest.raises(grpc.RpcError) as err:
        a.branch.Resync(O.ResyncRequest(serial="OTP-0008", first_code=token.press(),
                                         second_code=token.press() and "000000",
                                         operator_id="op"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    first, second = token.press(), token.press()
    status = a.branch.Resync(O.ResyncRequest(serial="OTP-0008", first_code=first,
                                             second_code=second, operator_id="op"))
    assert status.parameters.counter == token.counter
    assert verify(a, "OTP-0008", token.press()).outcome == O.VERIFY_OUTCOME_ACCEPTED


def test_given_seed_from_manufacturer_record(banks):
    _, a, _, _ = banks
    seed = bytes(range(20))
    resp = a.branch.Enroll(O.EnrollRequest(customer_id="C-1",
                                           serial="OTP-0009", operator_id="op", seed=seed,
                                           parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP,
                                                                      digits=8)))
    assert resp.generated_seed == b"" and resp.provisioning_uri == ""
    assert resp.device.parameters.period_seconds == 60 and resp.device.parameters.digits == 8
    token = DisplayToken("OTP-0009", seed, digits=8)
    assert verify(a, "OTP-0009", token.show()).outcome == O.VERIFY_OUTCOME_ACCEPTED
    with pytest.raises(grpc.RpcError) as err:
        a.branch.Enroll(O.EnrollRequest(customer_id="C-1",
                                        serial="OTP-0009", operator_id="op", seed=seed,
                                         parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize("code", ["", "12345", "1234567890123", "12a456", "12345 "])
def test_bad_codes_are_invalid_and_count_nothing(banks, code):
    _, a, _, _ = banks
    enroll(a, "OTP-0010")
    with pytest.raises(grpc.RpcError) as err:
        verify(a, "OTP-0010", code)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert a.backend.GetStatus(O.GetStatusRequest(serial="OTP-0010")).consecutive_failures == 0


def test_bad_input_and_roles(banks):
    _srv, a, _, _ = banks
    unknown = verify(a, "NOPE-404", "123456")
    assert unknown.outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    with pytest.raises(grpc.RpcError) as err:
        verify(a, "bad serial!", "123456")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A branch cannot verify, a backend cannot enroll.
    with pytest.raises(grpc.RpcError) as err:
        a.branch.Verify(O.VerifyRequest(serial="NOPE-404", code="123456"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        a.backend.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-0011", operator_id="op",
                                          parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    for req, needle in [
        (O.EnrollRequest(customer_id="C-1", serial="OTP-0011", operator_id="op"), "kind"),
        (O.EnrollRequest(customer_id="C-1", serial="OTP-0011", operator_id="op", seed=b"short",
                         parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)), "seed"),
        (O.EnrollRequest(customer_id="C-1", serial="OTP-0011", operator_id="op",
                         parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP, digits=5)), "digits"),
        (O.EnrollRequest(customer_id="C-1", serial="OTP-0011", operator_id="op",
                         parameters=O.OtpParameters(kind=9)), "kind"),
        (O.EnrollRequest(customer_id="C-1", serial="OTP-0011",
                         parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)), "operator_id"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            a.branch.Enroll(req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, needle
        assert needle in err.value.details()
    # Nothing was half-written.
    with pytest.raises(grpc.RpcError) as err:
        a.branch.GetStatus(O.GetStatusRequest(serial="OTP-0011"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_seeds_never_stored_in_plaintext_and_changes_audited(banks):
    srv, a, _, _ = banks
    seed = b"SEED-SEED-SEED-SEED!"
    a.branch.Enroll(O.EnrollRequest(customer_id="C-1",
                                    serial="OTP-0012", operator_id="op", seed=seed,
                                    parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)))
    a.backend.Verify(O.VerifyRequest(serial="OTP-0012", code="000000"))
    db = srv.app.db
    stored = db.run(lambda tx: tx.one("SELECT seed FROM otp_devices WHERE serial='OTP-0012'"))
    assert seed not in bytes(stored[0])
    dump = repr(db.run(lambda tx: tx.all("SELECT * FROM audit_log")))
    assert "SEED-SEED" not in dump and "000000" not in dump
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin"))
    entries = admin.ListAudit(system_pb2.ListAuditRequest(target="OTP-0012")).entries
    assert [(e.action, e.outcome, e.institution) for e in reversed(entries)] == [
        ("otp.enroll", "enrolled", "bank-a"), ("otp.verify", "wrong_code", "bank-a")]


def test_verify_stream_answers_each_request_and_survives_bad_ones(banks):
    _, a, b, _ = banks
    token = enroll(a, "OTP-0013")
    right = token.show()
    requests = [
        O.VerifyRequest(serial="OTP-0013", code=wrong(right), request_id="r1"),
        O.VerifyRequest(serial="OTP-0013", code="12x456", request_id="r2"),
        O.VerifyRequest(serial="NOPE-0404", code="123456", request_id="r3"),
        O.VerifyRequest(serial="OTP-0013", code=right, request_id="r4"),
        O.VerifyRequest(serial="OTP-0013", code=right, request_id="r5"),
    ]
    answers = {r.request_id: r for r in a.backend.VerifyStream(iter(requests))}
    assert set(answers) == {"r1", "r2", "r3", "r4", "r5"}
    assert answers["r1"].outcome == O.VERIFY_OUTCOME_WRONG_CODE
    assert answers["r2"].error.code == code_pb2.INVALID_ARGUMENT
    assert details_of_status(answers["r2"].error).reason == "BAD_REQUEST"
    assert answers["r3"].outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    assert not answers["r3"].HasField("error") and not answers["r4"].HasField("error")
    assert answers["r4"].outcome == O.VERIFY_OUTCOME_ACCEPTED
    assert answers["r4"].consecutive_failures == 0
    assert answers["r5"].outcome == O.VERIFY_OUTCOME_REPLAYED
    # The stream is for backends only.
    with pytest.raises(grpc.RpcError) as err:
        list(a.branch.VerifyStream(iter(requests)))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Not registered at B: B's stream says so.
    only = list(b.backend.VerifyStream(iter([O.VerifyRequest(serial="OTP-0013", code=right,
                                                             request_id="x")])))
    assert [r.outcome for r in only] == [O.VERIFY_OUTCOME_NOT_REGISTERED]


def test_loop_engine_keeps_the_rules(server, tmp_path):
    """[otp] engine = "loop" (SQLite): the same lockout, replay and stream answers."""
    srv = server(store_url=f"sqlite:///{tmp_path / 'loop.db'}", otp={"engine": "loop"})
    a, b = Bank(srv, "bank-a"), Bank(srv, "bank-b")
    token = enroll(a, "OTP-LOOP-1")
    b.branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-LOOP-1", operator_id="op"))
    code = token.show()
    assert verify(a, "OTP-LOOP-1", code).outcome == O.VERIFY_OUTCOME_ACCEPTED
    assert verify(b, "OTP-LOOP-1", code).outcome == O.VERIFY_OUTCOME_REPLAYED
    bad = wrong(token.code_at(time.time() + 60))
    answers = list(a.backend.VerifyStream(iter(
        [O.VerifyRequest(serial="OTP-LOOP-1", code=bad, request_id=str(i)) for i in range(12)])))
    outcomes = sorted(r.outcome for r in answers)
    assert outcomes.count(O.VERIFY_OUTCOME_WRONG_CODE) == 10
    assert outcomes.count(O.VERIFY_OUTCOME_LOCKED) == 2


def test_loop_engine_is_for_sqlite(server, pg_url):
    from devices.errors import BadRequest

    with pytest.raises(BadRequest, match="SQLite"):
        server(store_url=pg_url, otp={"engine": "loop"})
