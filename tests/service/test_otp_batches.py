"""Many verifications a call (VerifyBatch) or a frame (VerifyStream), and overload answered
RESOURCE_EXHAUSTED at once, through a real gRPC channel on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2

from authd.errors import details_of, details_of_status
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from devices.otp.codes import hotp
from tests.answers import flat, frames
from tests.holds import store_held, wait_backlog

SEED = bytes(range(1, 21))
WRONG = "999999"  # not among the first codes of SEED


def _enroll(srv: Any, serials: list[str], *register_at: str) -> None:
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    for serial in serials:
        teller.Enroll(O.EnrollRequest(serial=serial, operator_id="op", seed=SEED, customer_id="C-1",
                                      parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)))
        for bank in register_at:
            otp_pb2_grpc.OtpServiceStub(srv.channel(bank, "branch")).Register(
                O.RegisterRequest(serial=serial, operator_id="op", customer_id="C-1"))


def _backend(srv: Any, bank: str = "bank-a") -> otp_pb2_grpc.OtpServiceStub:
    return otp_pb2_grpc.OtpServiceStub(srv.channel(bank, "backend"))


def _batch(*items: tuple[str, str]) -> O.VerifyBatchRequest:
    return O.VerifyBatchRequest(requests=[O.VerifyRequest(serial=s, code=c, request_id=f"r{i}")
                                          for i, (s, c) in enumerate(items)])


def test_batch_answers_in_order_and_bad_requests_spare_the_others(server, store_url, front):
    srv = server(store_url=store_url, server={"front": front})
    _enroll(srv, ["OTP-B-0001", "OTP-B-0002"], "bank-b")
    answers = _backend(srv).VerifyBatch(_batch(
        ("OTP-B-0001", WRONG), ("OTP-B-0002", hotp(SEED, 0)), ("OTP-B-0001", "12x456"),
        ("NOPE-0404", "123456"), ("OTP-B-0002", hotp(SEED, 0)), ("-bad", "123456"),
        ("OTP-B-0001", WRONG))).responses
    assert [a.request_id for a in answers] == [f"r{i}" for i in range(7)]
    assert [O.VerifyOutcome.Name(a.outcome) for a in answers if not a.HasField("error")] == [
        "VERIFY_OUTCOME_WRONG_CODE", "VERIFY_OUTCOME_ACCEPTED", "VERIFY_OUTCOME_NOT_REGISTERED",
        "VERIFY_OUTCOME_REPLAYED", "VERIFY_OUTCOME_WRONG_CODE"]
    # One device's verifications of one batch count one after the other.
    assert [answers[0].consecutive_failures, answers[6].consecutive_failures] == [1, 2]
    for bad, field in ((answers[2], "code"), (answers[5], "serial")):
        assert bad.error.code == code_pb2.INVALID_ARGUMENT and not bad.message
        assert details_of_status(bad.error).field == field
    # The shared counter saw both failures, at another institution too.
    status = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-b", "backend")).GetStatus(
        O.GetStatusRequest(serial="OTP-B-0001"))
    assert status.consecutive_failures == 2


def test_batch_is_for_backends_and_bounded(server, store_url, front):
    srv = server(store_url=store_url, server={"front": front}, otp={"batch_request_max": 3})
    _enroll(srv, ["OTP-B-0003"])
    teller = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    with pytest.raises(grpc.RpcError) as err:
        teller.VerifyBatch(_batch(("OTP-B-0003", WRONG)))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        _backend(srv).VerifyBatch(_batch(*[("OTP-B-0003", WRONG)] * 4))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 3" in (err.value.details() or "")
    # Nothing of the refused calls was counted; an empty batch has an empty answer.
    assert _backend(srv).VerifyBatch(O.VerifyBatchRequest()).responses == []
    assert _backend(srv).GetStatus(O.GetStatusRequest(serial="OTP-B-0003")).consecutive_failures \
        == 0


def test_batched_lockout_is_exact(server, store_url, front):
    """200 wrong codes in batches and stream frames from 3 institutions, all at once: exactly
    10 are evaluated, the rest answer LOCKED."""
    srv = server(store_url=store_url, server={"front": front})
    _enroll(srv, ["OTP-B-0004"], "bank-b", "bank-c")
    banks = ["bank-a", "bank-b", "bank-c"]

    def batch(k: int) -> list[Any]:
        return list(_backend(srv, banks[k % 3]).VerifyBatch(
            _batch(*[("OTP-B-0004", WRONG)] * 10)).responses)

    def stream(k: int) -> list[Any]:
        requests = [O.VerifyRequest(serial="OTP-B-0004", code=WRONG, request_id=str(i))
                    for i in range(10)]
        return flat(_backend(srv, banks[k % 3]).VerifyStream(frames(requests, 3)))

    with ThreadPoolExecutor(20) as pool:
        answers = [a for f in [pool.submit(batch if k % 2 else stream, k) for k in range(20)]
                   for a in f.result()]
    outcomes = Counter(O.VerifyOutcome.Name(a.outcome) for a in answers)
    assert outcomes == {"VERIFY_OUTCOME_WRONG_CODE": 10, "VERIFY_OUTCOME_LOCKED": 190}
    assert sorted(a.consecutive_failures for a in answers
                  if a.outcome == O.VERIFY_OUTCOME_WRONG_CODE) == list(range(1, 11))


def test_each_verification_of_a_batch_takes_a_rate_limit_token(server, store_url, front):
    srv = server(store_url=store_url, server={"front": front},
                 otp={"verify_per_second": 0.01, "verify_burst": 3})
    answers = _backend(srv, "bank-rl-batch").VerifyBatch(
        _batch(*[("OTP-ANY-0001", "123456")] * 5)).responses
    assert [a.HasField("error") for a in answers] == [False, False, False, True, True]
    assert answers[3].error.code == code_pb2.RESOURCE_EXHAUSTED
    assert answers[3].error.message.startswith("too many OTP verifications")


def test_stream_frames_are_answered_in_order(server, store_url, front):
    srv = server(store_url=store_url, server={"front": front})
    serials = [f"OTP-B-1{i:03d}" for i in range(6)]
    _enroll(srv, serials)
    requests = [O.VerifyRequest(serial=serials[i % 6], code=hotp(SEED, i // 6),
                                request_id=str(i)) for i in range(30)]
    answer_frames = list(_backend(srv).VerifyStream(frames(requests, 7)))
    assert [len(f.responses) for f in answer_frames] == [7, 7, 7, 7, 2]
    answers = flat(answer_frames)
    assert [a.request_id for a in answers] == [str(i) for i in range(30)]
    assert {a.outcome for a in answers} == {O.VERIFY_OUTCOME_ACCEPTED}


def test_an_oversized_frame_ends_the_stream_after_the_frames_before_it(server, store_url,
                                                                       front):
    srv = server(store_url=store_url, server={"front": front}, otp={"batch_request_max": 2})
    call = _backend(srv).VerifyStream(iter([
        _batch(("OTP-ANY-0001", "123456")), _batch(*[("OTP-ANY-0001", "123456")] * 3)]))
    first = next(call)
    assert first.responses[0].outcome == O.VERIFY_OUTCOME_NOT_REGISTERED
    with pytest.raises(grpc.RpcError) as err:
        next(call)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --------------------------------------------------------------------------- overload


def _busy(err: grpc.RpcError) -> None:
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of(err)
    assert details.reason == "BUSY" and details.retry_after is not None
    assert 0 < details.retry_after <= 5
    assert "nothing was counted" in (err.details() or "")


def test_overload_is_refused_at_once_with_a_retry_time(server, store_url, front):
    """With the store held, a node admits max_in_flight verifications (and its writer's queue
    queue_max); the next call is answered RESOURCE_EXHAUSTED at once, with the reason BUSY and
    when to retry, and nothing of it is counted. The admitted calls are answered after the
    store comes back."""
    srv = server(store_url=store_url, server={"front": front},
                 otp={"max_in_flight": 6, "batch_request_max": 4, "writers": 1})
    serials = [f"OTP-BUSY-{i:02d}" for i in range(8)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = _backend(srv)

    def verify(serial: str) -> str:
        try:
            return O.VerifyOutcome.Name(stub.Verify(O.VerifyRequest(serial=serial,
                                                                    code=WRONG),
                                                    timeout=60).outcome)
        except grpc.RpcError as exc:
            return exc.code().name

    with ThreadPoolExecutor(8) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        held = [pool.submit(verify, "OTP-BLOCKER")]
        wait_backlog(srv, in_flight=1)  # the writer waits for the held store with it
        held += [pool.submit(verify, s) for s in serials[:5]]
        wait_backlog(srv, in_flight=1, queued=5)  # all six wait for the writer
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            stub.Verify(O.VerifyRequest(serial=serials[5], code=WRONG), timeout=30)
        _busy(err.value)
        with pytest.raises(grpc.RpcError) as err:
            stub.VerifyBatch(_batch(("OTP-BUSY-07", WRONG)), timeout=30)
        _busy(err.value)
        # A stream frame beyond the bound is answered with the error, and the stream goes on.
        (frame,) = list(stub.VerifyStream(iter([_batch(("OTP-BUSY-07", WRONG))]), timeout=30))
        assert frame.responses[0].error.code == code_pb2.RESOURCE_EXHAUSTED
        assert time.monotonic() - started < 20  # refused at once, not after the store
        release()
        assert [h.result() for h in held] == ["VERIFY_OUTCOME_WRONG_CODE"] * 6
    ops = otp_pb2_grpc.OtpServiceStub(srv.channel("ops", "admin"))
    for serial in serials[5:]:
        assert ops.GetStatus(O.GetStatusRequest(serial=serial)).consecutive_failures == 0
    assert stub.Verify(O.VerifyRequest(serial=serials[7], code=WRONG)).consecutive_failures == 1


def test_a_full_writer_queue_is_refused_at_once(server, store_url):
    """(The daemon's own server. Behind the native front end the bound applies to what waits
    in the front end beyond the frames the engine holds: tests/service/test_front.py.)"""
    srv = server(store_url=store_url, otp={"queue_max": 2, "writers": 1})
    serials = [f"OTP-QUE-{i:02d}" for i in range(5)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = _backend(srv)
    with ThreadPoolExecutor(4) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        # The first is taken by the writer, which waits for the store; two more queue.
        first = pool.submit(stub.Verify, O.VerifyRequest(serial="OTP-BLOCKER", code=WRONG),
                            timeout=60)
        wait_backlog(srv, in_flight=1)
        queued = [pool.submit(stub.Verify, O.VerifyRequest(serial=s, code=WRONG), timeout=60)
                  for s in serials[1:3]]
        wait_backlog(srv, in_flight=1, queued=2)
        with pytest.raises(grpc.RpcError) as err:
            stub.Verify(O.VerifyRequest(serial=serials[3], code=WRONG), timeout=30)
        _busy(err.value)
        release()
        assert first.result().consecutive_failures == 1
        assert [q.result().consecutive_failures for q in queued] == [1, 1]
