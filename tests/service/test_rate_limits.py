"""Per-institution rate limits through a real gRPC channel, on SQLite and PostgreSQL.

The limits are set to a few calls and one token per 100 s, so a loaded machine cannot refill a
bucket during a test."""

from __future__ import annotations

import itertools

import grpc
import pytest
from google.rpc import code_pb2

from authd import metrics
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc

SLOW = 0.01  # tokens per second
_names = itertools.count(1)


def institution() -> str:
    """A name no other test uses: the metrics registry is shared by the whole process."""
    return f"bank-rl{next(_names)}"


def exhausted(call) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    return err.value.details()


def refusals(limit: str, name: str) -> float:
    return metrics.value("authd_rate_limited_total", limit=limit, institution=name)


def test_verify_is_limited_per_institution(server, store_url):
    srv = server(store_url=store_url, otp={"verify_per_second": SLOW, "verify_burst": 3})
    x, y = institution(), institution()
    stub_x = otp_pb2_grpc.OtpServiceStub(srv.channel(x, "backend"))
    stub_y = otp_pb2_grpc.OtpServiceStub(srv.channel(y, "backend"))
    request = O.VerifyRequest(serial="OTP-ANY-0001", code="123456")
    for _ in range(3):
        assert stub_x.Verify(request).outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    message = exhausted(lambda: stub_x.Verify(request))
    assert f"too many OTP verifications from {x}" in message and "0.01/s" in message
    assert refusals("otp.verify", x) == 1
    # Another institution has its own budget.
    assert stub_y.Verify(request).outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    assert refusals("otp.verify", y) == 0
    # A stream shares the budget: each request over it is answered, the refused ones with
    # the error, and the stream goes on.
    answers = list(stub_y.VerifyStream(iter(
        [O.VerifyRequest(serial="OTP-ANY-0001", code="123456", request_id=str(i))
         for i in range(4)])))
    assert sorted(a.request_id for a in answers) == ["0", "1", "2", "3"]
    refused = [a for a in answers if a.HasField("error")]
    assert len(refused) == 2 and refused[0].error.code == code_pb2.RESOURCE_EXHAUSTED
    assert refused[0].error.message.startswith("too many")
    assert refusals("otp.verify", y) == 2
    line = f'authd_rate_limited_total{{institution="{y}",limit="otp.verify"}} 2.0'
    assert line in metrics.render()


def test_registration_is_limited_before_anything_is_counted(server, store_url):
    srv = server(store_url=store_url, otp={
        "online_register_per_second": SLOW, "online_register_burst": 2,
        "branch_register_per_second": SLOW, "branch_register_burst": 1})
    x = institution()
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    teller.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-RL-0001", operator_id="op",
                                  parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)))
    online = otp_pb2_grpc.OtpServiceStub(srv.channel(x, "backend"))
    wrong = O.RegisterRequest(customer_id="C-1",
                              serial="OTP-RL-0001", code="999999", strong_authentication=True)
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as err:
            online.Register(wrong)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "online OTP registrations" in exhausted(lambda: online.Register(wrong))
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    assert ops.GetStatus(O.GetStatusRequest(serial="OTP-RL-0001")).consecutive_failures == 2
    assert refusals("otp.register.online", x) == 1

    branch = otp_pb2_grpc.OtpServiceStub(srv.channel(x, "branch"))
    branch.Register(O.RegisterRequest(customer_id="C-1", serial="OTP-RL-0001", operator_id="op"))
    assert "registrations at branches" in exhausted(lambda: branch.Register(
        O.RegisterRequest(customer_id="C-1", serial="OTP-RL-0002", operator_id="op")))
    assert refusals("otp.register.branch", x) == 1


def test_security_card_challenges_and_answers_are_limited(server, store_url):
    x = institution()
    srv = server(store_url=store_url, security_card={
        "challenge_per_second": SLOW, "challenge_burst": 2,
        "answer_per_second": SLOW, "answer_burst": 1})
    teller = pb_grpc.SecurityCardServiceStub(srv.channel(x, "branch"))
    backend = pb_grpc.SecurityCardServiceStub(srv.channel(x, "backend"))
    serial = teller.IssueCard(pb.IssueSecurityCardRequest(
        customer_id="cust-1", medium=pb.SECURITY_CARD_MEDIUM_PRINTED)).card.serial
    start = pb.StartSecurityCardChallengeRequest(serial=serial)
    first = backend.StartChallenge(start)
    backend.StartChallenge(start)
    assert "security-card challenges" in exhausted(lambda: backend.StartChallenge(start))
    answer = pb.VerifySecurityCardAnswerRequest(challenge_id=first.challenge_id, answer="0000")
    backend.VerifyAnswer(answer)
    assert "security-card answers" in exhausted(lambda: backend.VerifyAnswer(answer))
    assert refusals("security_card.challenge", x) == 1
    assert refusals("security_card.answer", x) == 1
    # the refused answer was not evaluated: one failure at most
    assert backend.GetCard(pb.GetSecurityCardRequest(serial=serial)).failures <= 1


def test_a_rate_of_zero_switches_a_limit_off(server):
    srv = server(otp={"verify_per_second": 0, "verify_burst": 0})
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel(institution(), "backend"))
    answers = list(stub.VerifyStream(iter(
        [O.VerifyRequest(serial="OTP-ANY-0001", code="123456", request_id=str(i))
         for i in range(600)])))
    assert len(answers) == 600 and not any(a.HasField("error") for a in answers)


def test_bad_limits_stop_the_server_with_a_clear_error(server):
    from devices.errors import BadRequest

    with pytest.raises(BadRequest, match="burst"):
        server(otp={"verify_per_second": 10, "verify_burst": 0})
    with pytest.raises(BadRequest, match="max_challenges_per_card"):
        server(security_card={"max_challenges_per_card": 0})
