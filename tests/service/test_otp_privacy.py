"""No oracle across institutions: for every OtpService call that names a serial, a serial
registered only at another institution gets exactly the answer of a serial that does not exist
(status code, details, every response field), and nothing is counted. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import grpc
import pskc
import pytest

from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, system_pb2, system_pb2_grpc
from simulators.otp.generator import DisplayToken
from tests.answers import answer_of

ELSEWHERE = "OTP-ELSE-0001"  # registered only at bank-a
UNKNOWN = "OTP-NONE-0001"  # never enrolled
STATES = ["active", "locked", "lost", "replaced"]
_fresh = itertools.count(1)


class Institution:
    def __init__(self, srv: Any, name: str) -> None:
        self.name = name
        self.branch = otp_pb2_grpc.OtpServiceStub(srv.channel(name, "branch", "teller"))
        self.backend = otp_pb2_grpc.OtpServiceStub(srv.channel(name, "backend", "ib"))
        self.audit = system_pb2_grpc.SystemServiceStub(srv.channel(name, "branch", "teller"))


def unused_code(token: DisplayToken) -> str:
    """A code no step near now shows: always wrong."""
    near = {token.code_at(time.time() + 60 * k) for k in range(-3, 4)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in near)


def device_elsewhere(srv: Any, state: str) -> DisplayToken:
    """ELSEWHERE enrolled and registered at bank-a only, in ``state``."""
    a = Institution(srv, "bank-a")
    resp = a.branch.Enroll(O.EnrollRequest(customer_id="C-1", serial=ELSEWHERE, operator_id="op",
                                           parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)))
    token = DisplayToken.from_uri(resp.provisioning_uri, ELSEWHERE)
    if state == "locked":
        for _ in range(10):
            a.backend.Verify(O.VerifyRequest(serial=ELSEWHERE, code=unused_code(token)))
    elif state == "lost":
        a.backend.ReportLost(O.ReportLostRequest(serial=ELSEWHERE, reason="lost"))
    elif state == "replaced":
        a.branch.Replace(O.ReplaceRequest(old_serial=ELSEWHERE, new_serial="OTP-ELSE-0002",
                                          reason=O.REPLACE_REASON_REISSUE, operator_id="op"))
    return token


def probes(b: Institution, code: str) -> dict[str, Callable[[str], Any]]:
    """Every OtpService call of bank-b that names a serial, as a function of the serial."""

    def replace(serial: str) -> Any:
        return b.branch.Replace(O.ReplaceRequest(
            old_serial=serial, new_serial=f"OTP-NEW-{next(_fresh):04d}",
            reason=O.REPLACE_REASON_REISSUE, operator_id="op"))

    return {
        "Verify": lambda s: b.backend.Verify(O.VerifyRequest(serial=s, code=code,
                                                             request_id="r-1")),
        "VerifyStream": lambda s: list(b.backend.VerifyStream(iter(
            [O.VerifyRequest(serial=s, code=code, request_id="r-1")]))),
        "Register (online)": lambda s: b.backend.Register(O.RegisterRequest(customer_id="C-1",
            serial=s, code=code, strong_authentication=True)),
        "Deregister": lambda s: b.branch.Deregister(O.DeregisterRequest(
            serial=s, operator_id="op", reason="closed")),
        "Unlock": lambda s: b.branch.Unlock(O.UnlockRequest(serial=s, operator_id="op",
                                                            reason="ID checked")),
        "ReportLost (backend)": lambda s: b.backend.ReportLost(O.ReportLostRequest(
            serial=s, reason="lost")),
        "ReportLost (branch)": lambda s: b.branch.ReportLost(O.ReportLostRequest(
            serial=s, reason="lost")),
        "WithdrawLossReport": lambda s: b.branch.WithdrawLossReport(
            O.WithdrawLossReportRequest(serial=s, operator_id="op", reason="found")),
        "Replace": replace,
        "Resync": lambda s: b.branch.Resync(O.ResyncRequest(
            serial=s, first_code=code, second_code=code, operator_id="op")),
        "AssignCustomer": lambda s: b.branch.AssignCustomer(O.AssignCustomerRequest(
            serial=s, customer_id="B-1", operator_id="op")),
        "GetStatus (backend)": lambda s: b.backend.GetStatus(O.GetStatusRequest(serial=s)),
        "GetStatus (branch)": lambda s: b.branch.GetStatus(O.GetStatusRequest(serial=s)),
    }


# What bank-b must be told, for both serials (the serial shown as <hidden>).
NOT_REGISTERED = ("NOT_FOUND", "OTP device <hidden> is not registered at bank-b", "")
EXPECTED = {
    "Verify": "NOT_REGISTERED",
    "VerifyStream": "NOT_REGISTERED",
    "Register (online)": ("PERMISSION_DENIED", "online registration of OTP device <hidden> "
                          "refused"),
}
# Calls that create or attach a serial in person at a branch: they must tell whether it exists
# (docs/otp.md); tested below for what they say.
CREATING = {"Enroll", "Register (branch)", "ImportDevices"}


def test_every_call_is_probed():
    methods = set(O.DESCRIPTOR.services_by_name["OtpService"].methods_by_name)
    covered = {name.split(" ")[0] for name in probes(None, "") | dict.fromkeys(CREATING)}  # type: ignore[arg-type]
    assert covered == methods


@pytest.mark.parametrize("state", STATES)
def test_registered_elsewhere_looks_unknown(server, store_url, state):
    srv = server(store_url=store_url)
    token = device_elsewhere(srv, state)
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    before = ops.GetStatus(O.GetStatusRequest(serial=ELSEWHERE))
    b = Institution(srv, "bank-b")
    counted = 0
    for name, call in probes(b, unused_code(token)).items():
        elsewhere = answer_of(lambda call=call: call(ELSEWHERE), hide=[ELSEWHERE])
        unknown = answer_of(lambda call=call: call(UNKNOWN), hide=[UNKNOWN])
        assert elsewhere == unknown, name
        expected = EXPECTED.get(name, NOT_REGISTERED)
        if expected == "NOT_REGISTERED":
            assert elsewhere[0] == "OK", name
            fields = json.loads(elsewhere[2])
            for answer in fields if isinstance(fields, list) else [fields]:
                assert answer["outcome"] == "VERIFY_OUTCOME_NOT_REGISTERED", name
                assert answer["consecutive_failures"] == 0 and answer["attempts_left"] == 0
                assert answer["request_id"] == "r-1" and not answer.get("error")
        else:
            assert elsewhere[0] == expected[0] and elsewhere[1].startswith(expected[1]), name
        if name == "Register (online)" and state == "active":
            counted = 1  # a wrong proof of possession counts on the shared counter
    # bank-b's audit trail of both serials looks the same too.
    trails = []
    for serial in (ELSEWHERE, UNKNOWN):
        entries = b.audit.ListAudit(system_pb2.ListAuditRequest(target=serial)).entries
        trails.append([(e.institution, e.role, e.action, e.outcome, e.detail_json)
                       for e in entries])
    assert trails[0] == trails[1] and trails[0]  # the refused online registration
    # Nothing changed at the device but the counted proof; nothing was created.
    after = ops.GetStatus(O.GetStatusRequest(serial=ELSEWHERE))
    assert (after.state, after.consecutive_failures) == (
        before.state, before.consecutive_failures + counted)
    assert [(r.institution, r.failures_here) for r in after.registrations] == [
        (r.institution, r.failures_here) for r in before.registrations]
    for serial in [UNKNOWN] + [f"OTP-NEW-{n:04d}" for n in range(1, next(_fresh))]:
        with pytest.raises(grpc.RpcError) as err:
            ops.GetStatus(O.GetStatusRequest(serial=serial))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_calls_that_create_a_serial_tell_only_that_it_exists(server, store_url):
    """Enroll, ImportDevices and branch Register must say whether a serial exists (they create
    or attach it, at a branch, with the device or the manufacturer's file in hand); they name no
    other institution."""
    srv = server(store_url=store_url)
    device_elsewhere(srv, "active")
    b = Institution(srv, "bank-b")
    with pytest.raises(grpc.RpcError) as err:
        b.branch.Enroll(O.EnrollRequest(customer_id="C-1", serial=ELSEWHERE, operator_id="op",
                                        parameters=O.OtpParameters(kind=O.OTP_KIND_TOTP)))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "bank-a" not in err.value.details()
    seed_file = pskc.PSKC()
    seed_file.add_key(serial=ELSEWHERE, algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp",
                      response_length=6, response_encoding="DECIMAL",
                      secret=b"12345678901234567890")
    out = io.BytesIO()
    seed_file.write(out)
    with pytest.raises(grpc.RpcError) as err:
        b.branch.ImportDevices(O.ImportDevicesRequest(pskc=out.getvalue(), operator_id="op"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "bank-a" not in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        b.branch.Register(O.RegisterRequest(customer_id="C-1", serial=UNKNOWN, operator_id="op"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    registered = b.branch.Register(O.RegisterRequest(customer_id="C-1",
                                                     serial=ELSEWHERE, operator_id="op"))
    assert [r.institution for r in registered.registrations] == ["bank-b"]
    assert registered.issuer == ""


@pytest.mark.parametrize("state", ["locked", "lost"])
def test_status_shows_only_the_callers_registration(server, store_url, state):
    srv = server(store_url=store_url)
    device_elsewhere(srv, state)
    b = Institution(srv, "bank-b")
    b.branch.Register(O.RegisterRequest(customer_id="C-1", serial=ELSEWHERE, operator_id="op"))
    seen = b.backend.GetStatus(O.GetStatusRequest(serial=ELSEWHERE))
    assert [r.institution for r in seen.registrations] == ["bank-b"]
    assert seen.issuer == "" and "bank-a" not in str(seen)
    # The customer's own device state (shared failures, attempts left) is shown.
    if state == "locked":
        assert seen.state == O.DEVICE_STATE_LOCKED
        assert (seen.consecutive_failures, seen.attempts_left) == (10, 0)
        assert seen.registrations[0].failures_here == 0
    else:
        assert seen.state == O.DEVICE_STATE_REPORTED_LOST
