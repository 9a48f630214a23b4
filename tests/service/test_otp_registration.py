"""Online registration proves possession of the device; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, system_pb2, system_pb2_grpc
from simulators.otp.generator import DisplayToken
from tests.answers import answer_of

SERIAL = "OTP-REG-0001"


class Bank:
    def __init__(self, srv, name: str) -> None:
        self.name = name
        self.branch = otp_pb2_grpc.OtpServiceStub(srv.channel(name, "branch", "teller"))
        self.backend = otp_pb2_grpc.OtpServiceStub(srv.channel(name, "backend", "ib"))
        self.system = system_pb2_grpc.SystemServiceStub(srv.channel(name, "branch", "teller"))

    def online(self, serial: str, code: str) -> O.DeviceStatus:
        return self.backend.Register(O.RegisterRequest(customer_id="C-1", serial=serial, code=code,
                                                       strong_authentication=True))

    def trail(self, serial: str) -> list[tuple[str, str, dict]]:
        entries = self.system.ListAudit(system_pb2.ListAuditRequest(target=serial)).entries
        return [(e.action, e.outcome, json.loads(e.detail_json)) for e in reversed(entries)]


@pytest.fixture
def center(server, store_url):
    srv = server(store_url=store_url)
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin", "ops"))
    return srv, ops, Bank(srv, "bank-a"), Bank(srv, "bank-b")


def enroll(bank: Bank, serial: str = SERIAL, kind=O.OTP_KIND_TOTP, digits: int = 6):
    resp = bank.branch.Enroll(O.EnrollRequest(customer_id="C-1", serial=serial, operator_id="op",
                                              parameters=O.OtpParameters(kind=kind,
                                                                         digits=digits)))
    return DisplayToken.from_uri(resp.provisioning_uri, serial)


def wrong_for(token: DisplayToken) -> str:
    near = {token.code_at(time.time() + 60 * k) for k in range(-3, 4)}
    return next(f"{n:0{token.digits}d}" for n in range(10**6)
                if f"{n:0{token.digits}d}" not in near)


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    return err.value


def test_the_current_code_registers_and_is_used_up(center):
    _, _, a, b = center
    token = enroll(a)
    code = token.show()
    status = b.online(SERIAL, code)
    assert [(r.institution, r.channel) for r in status.registrations] == [
        ("bank-b", O.REGISTRATION_CHANNEL_ONLINE)]
    # The code proved possession; it cannot be used again, here or anywhere.
    for bank in (a, b):
        again = bank.backend.Verify(O.VerifyRequest(serial=SERIAL, code=code))
        assert again.outcome == O.VERIFY_OUTCOME_REPLAYED
    assert [(act, out) for act, out, _ in b.trail(SERIAL)] == [
        ("otp.register", "registered"), ("otp.verify", "replayed")]


def test_a_wrong_code_is_refused_like_an_unknown_serial_and_counts(center):
    srv, ops, a, b = center
    token = enroll(a)
    wrong = wrong_for(token)
    bad = answer_of(lambda: b.online(SERIAL, wrong), hide=[SERIAL])
    unknown = answer_of(lambda: b.online("OTP-NONE-9999", wrong), hide=["OTP-NONE-9999"])
    assert bad == unknown and bad[0] == "PERMISSION_DENIED"
    assert "branch" in bad[1] and "attempt" not in bad[1]  # no counters in the answer
    # It counted on the shared counter, without any institution's share.
    status = ops.GetStatus(O.GetStatusRequest(serial=SERIAL))
    assert status.consecutive_failures == 1
    assert [(r.institution, r.failures_here) for r in status.registrations] == [("bank-a", 0)]
    assert a.backend.GetStatus(O.GetStatusRequest(serial=SERIAL)).attempts_left == 9
    # bank-b's own trail shows a refusal, as for the unknown serial; the center's record of the
    # counted failure names bank-b and is seen by operations only.
    assert b.trail(SERIAL) == [("otp.register", "refused", {"channel": "online"})]
    assert b.trail("OTP-NONE-9999") == b.trail(SERIAL)
    assert a.trail(SERIAL) == [("otp.enroll", "enrolled", a.trail(SERIAL)[0][2])]
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin"))
    records = admin.ListAudit(system_pb2.ListAuditRequest(target=SERIAL)).entries
    counted = [json.loads(e.detail_json) for e in records if e.action == "otp.failure"]
    assert counted == [{"channel": "online_registration", "failures": 1,
                        "institution": "bank-b"}]
    # A right code afterwards registers and resets the shared counter.
    assert b.online(SERIAL, token.show()).consecutive_failures == 0


def test_ten_wrong_registration_codes_lock_the_device_everywhere(center):
    _, ops, a, b = center
    token = enroll(a)
    wrong = wrong_for(token)
    for _ in range(4):
        a.backend.Verify(O.VerifyRequest(serial=SERIAL, code=wrong))
    for _ in range(6):
        refused(lambda: b.online(SERIAL, wrong))
    status = ops.GetStatus(O.GetStatusRequest(serial=SERIAL))
    assert status.state == O.DEVICE_STATE_LOCKED and status.consecutive_failures == 10
    # Locked: the right code neither registers nor verifies, and nothing more is counted.
    refused(lambda: b.online(SERIAL, token.show()))
    verdict = a.backend.Verify(O.VerifyRequest(serial=SERIAL, code=token.show()))
    assert verdict.outcome == O.VERIFY_OUTCOME_LOCKED
    assert ops.GetStatus(O.GetStatusRequest(serial=SERIAL)).consecutive_failures == 10
    # A teller unlocks it; registration then works with the current code.
    a.branch.Unlock(O.UnlockRequest(serial=SERIAL, operator_id="op", reason="ID checked"))
    assert b.online(SERIAL, token.code_at(time.time() + 60)).state == O.DEVICE_STATE_ACTIVE


def test_codes_that_cannot_be_right_are_refused_uncounted(center):
    _, ops, a, b = center
    token = enroll(a, digits=8)
    code = token.show()
    refused(lambda: b.online(SERIAL, code[:6]))  # another length than the device's
    a.backend.Verify(O.VerifyRequest(serial=SERIAL, code=code))
    refused(lambda: b.online(SERIAL, code))  # replayed
    assert ops.GetStatus(O.GetStatusRequest(serial=SERIAL)).consecutive_failures == 0


def test_hotp_device_registers_with_its_next_press(center):
    _, _, a, b = center
    token = enroll(a, kind=O.OTP_KIND_HOTP)
    status = b.online(SERIAL, token.press())
    assert status.parameters.counter == token.counter
    assert b.backend.Verify(O.VerifyRequest(serial=SERIAL, code=token.press())).outcome == \
        O.VERIFY_OUTCOME_ACCEPTED


@pytest.mark.parametrize("request_fields, code", [
    ({"serial": SERIAL, "strong_authentication": True}, grpc.StatusCode.INVALID_ARGUMENT),
    ({"serial": SERIAL, "strong_authentication": True, "code": "12a456"},
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"serial": SERIAL, "strong_authentication": True, "code": "123456789"},
     grpc.StatusCode.INVALID_ARGUMENT),
    ({"serial": SERIAL, "code": "123456"}, grpc.StatusCode.FAILED_PRECONDITION),
])
def test_malformed_online_registrations_change_nothing(center, request_fields, code):
    _, ops, a, b = center
    enroll(a)
    with pytest.raises(grpc.RpcError) as err:
        b.backend.Register(O.RegisterRequest(customer_id="C-1", **request_fields))
    assert err.value.code() == code
    status = ops.GetStatus(O.GetStatusRequest(serial=SERIAL))
    assert status.consecutive_failures == 0 and len(status.registrations) == 1
    assert b.trail(SERIAL) == []
