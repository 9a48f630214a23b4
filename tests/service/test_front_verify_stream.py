"""VerifyStream served by the native front end, at its edges: a client that goes away while
its frames are in the engine and in the front end's link, and a front end told to stop while
a stream is open. Each frame the engine holds comes back before the stream is let go, each
admitted verification leaves the admission bound, and the front end goes on (or exits
cleanly) — no crash, no hang."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc
from tests.conftest import wait_for
from tests.holds import store_held, wait_backlog
from tests.service.test_front import NO_LOCKOUT, WRONG, _answer, _enroll
from tests.service.test_front_answers import _front, _scrape

STREAM = "/authd.v1.OtpService/VerifyStream"


def _frame(serial: str, n: int) -> O.VerifyBatchRequest:
    return O.VerifyBatchRequest(requests=[O.VerifyRequest(serial=serial, code=WRONG,
                                                          request_id=f"f{n}")])


def _frames(serials: list[str], open_: threading.Event) -> Iterator[O.VerifyBatchRequest]:
    """One frame a serial, then the stream kept open until ``open_`` is set."""
    for n, serial in enumerate(serials):
        yield _frame(serial, n)
    open_.wait(60)


def _batch_admitted(stub: Any, serials: list[str]) -> bool:
    try:
        stub.VerifyBatch(O.VerifyBatchRequest(requests=[
            O.VerifyRequest(serial=s, code=WRONG) for s in serials]), timeout=30)
    except grpc.RpcError:
        return False
    return True


def test_a_stream_cancelled_with_frames_in_the_engine_and_the_link(server, native_front,
                                                                   tmp_path):
    url = f"sqlite:///{tmp_path / 'cancelled.db'}"
    srv = server(store_url=url, server={"front": "native", "metrics_listen": "127.0.0.1:0"},
                 otp={**NO_LOCKOUT, "writers": 1, "max_in_flight": 7, "batch_request_max": 7})
    serials = [f"OTP-SC-{i:02d}" for i in range(6)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    front = srv._bg.running.front
    pid = front.pid()
    start = _scrape(srv)
    open_ = threading.Event()
    with ThreadPoolExecutor(1) as pool, store_held(url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)
        call = stub.VerifyStream(_frames(serials, open_), timeout=60)
        # Three frames in the engine (the link's window is four), three in the front end's link;
        # with the blocker, all seven verifications admitted are held.
        wait_backlog(srv, in_flight=1, queued=6)
        call.cancel()
        open_.set()
        assert wait_for(lambda: _front(_scrape(srv), STREAM, "CANCELLED")
                        - _front(start, STREAM, "CANCELLED") == 1, 30)
        release()
        assert blocker.result(timeout=60) == "VERIFY_OUTCOME_WRONG_CODE"
    # Every frame left the admission bound: seven verifications are admitted at once again.
    assert wait_for(lambda: _batch_admitted(stub, ["OTP-BLOCKER", *serials]), 30)
    assert front.pid() == pid and front.restarts == 0
    answers = list(stub.VerifyStream(iter([_frame(s, n) for n, s in enumerate(serials)]),
                                     timeout=30))
    assert [a.responses[0].request_id for a in answers] == [f"f{n}" for n in range(6)]
    assert _front(_scrape(srv), STREAM, "OK") - _front(start, STREAM, "OK") == 1


def test_a_stream_open_at_shutdown_has_its_frames_answered_and_the_front_end_exits_cleanly(
        server, native_front, tmp_path, capfd):
    url = f"sqlite:///{tmp_path / 'shutdown.db'}"
    srv = server(store_url=url, server={"front": "native", "grace_seconds": 4},
                 otp={**NO_LOCKOUT, "writers": 1})
    serials = [f"OTP-SS-{i:02d}" for i in range(3)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    front = srv._bg.running.front
    proc = front._proc
    open_ = threading.Event()
    with ThreadPoolExecutor(1) as pool, store_held(url, "OTP-BLOCKER") as release:
        blocker = pool.submit(_answer, stub, "OTP-BLOCKER", 60)
        wait_backlog(srv, in_flight=1)
        call = stub.VerifyStream(_frames(serials, open_), timeout=60)
        wait_backlog(srv, in_flight=1, queued=len(serials))
        os.kill(proc.pid, signal.SIGTERM)  # in-flight calls may finish within the grace
        release()
        assert blocker.result(timeout=60) == "VERIFY_OUTCOME_WRONG_CODE"
        answers = [next(call) for _ in serials]
        assert [a.responses[0].request_id for a in answers] == ["f0", "f1", "f2"]
        # The client never half-closes: the grace ends the stream.
        try:
            next(call)
            ended = "OK"
        except grpc.RpcError as exc:
            ended = exc.code().name
        open_.set()
    assert ended in ("CANCELLED", "UNAVAILABLE"), ended
    assert proc.wait(30) == 0
    err = capfd.readouterr().err
    assert "assertion failed" not in err and "leak" not in err.lower(), err
    # The daemon starts it again; verifications are answered.
    assert wait_for(lambda: front.restarts == 1, 30)
    assert wait_for(lambda: _answer(stub, serials[0], 10) == "VERIFY_OUTCOME_WRONG_CODE", 30)
