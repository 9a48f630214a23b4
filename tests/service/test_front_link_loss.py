"""The daemon's end of the native front end's links dying while calls are in flight: the
verification link (authd/otp/link.py) and the call link (authd/call_link.py). Every caller
whose call was in flight gets UNAVAILABLE with its reason and a message saying what may have
happened — never a hang, never a CANCELLED without a body — and once the daemon's end is back
the same front end serves calls again."""

from __future__ import annotations

import contextvars
import hashlib
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from authd import errors
from authd.call_link import LinkedMethod
from authd.front_link import FrontListener
from authd.otp.feature import OtpFeature
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, token_pb2, token_pb2_grpc
from simulators.token.softhsm import process_env
from tests.conftest import wait_for
from tests.holds import store_held, wait_backlog
from tests.service.test_front import NO_LOCKOUT, WRONG, _answer, _enroll

SIGN = "/authd.v1.TokenService/Sign"


def _outcome(call: Any) -> tuple[str, str, str]:
    """(code, reason, message) of a call, 'OK' when it succeeded."""
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code().name, errors.details_of(exc).reason, exc.details() or ""
    return "OK", "", ""


def _kill(listener: FrontListener, what: str) -> int:
    """The daemon's end dying mid-call: every connection of the listener shut from the
    daemon's side, and with ``what == "listener"`` the listening socket too (its accept
    fails: the daemon listens again, under its own watch)."""
    if what == "listener":
        listener._listener.shutdown(socket.SHUT_RDWR)
        assert wait_for(lambda: listener.relistened == 1, 30)
    shut = 0
    for conn in list(listener._connections):
        try:
            conn.shutdown(socket.SHUT_RDWR)
            shut += 1
        except OSError:
            pass
    return shut


@pytest.mark.parametrize("what", ["connection", "listener"])
def test_verifications_in_flight_when_the_engine_link_dies(server, native_front, store_url,
                                                           what):
    srv = server(store_url=store_url, server={"front": "native"},
                 otp={**NO_LOCKOUT, "writers": 1})
    serials = [f"OTP-LL-{i:02d}" for i in range(6)]
    _enroll(srv, ["OTP-BLOCKER", *serials])
    stub = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    assert _answer(stub, serials[0], 30) == "VERIFY_OUTCOME_WRONG_CODE"
    link = srv.app.require(OtpFeature).link
    assert link is not None
    with ThreadPoolExecutor(8) as pool, store_held(store_url, "OTP-BLOCKER") as release:
        # The one writer waits on the held store with the blocker; the others queue behind.
        held = [pool.submit(_outcome, lambda s=s: stub.Verify(
            O.VerifyRequest(serial=s, code=WRONG), timeout=60)) for s in ["OTP-BLOCKER"]]
        wait_backlog(srv, in_flight=1)
        held += [pool.submit(_outcome, lambda s=s: stub.Verify(
            O.VerifyRequest(serial=s, code=WRONG), timeout=60)) for s in serials]
        # Every verification waits for the store: in the engine, or in the front end's link.
        wait_backlog(srv, in_flight=1, queued=len(serials))
        assert not any(f.done() for f in held)
        assert _kill(link, what) == 1
        answers = [f.result(timeout=90) for f in held]
        release()
    for code, reason, message in answers:
        assert (code, reason) == ("UNAVAILABLE", "UNREACHABLE"), answers
        assert "may have been counted" in message or "nothing was counted" in message
    # The front end connects again; verifications are answered.
    assert wait_for(lambda: _answer(stub, serials[1], 10) == "VERIFY_OUTCOME_WRONG_CODE", 60)
    assert [_answer(stub, s, 30) for s in serials] == ["VERIFY_OUTCOME_WRONG_CODE"] * 6


@pytest.mark.parametrize("what", ["connection", "listener"])
def test_signatures_in_flight_when_the_call_link_dies(server, native_front, what):
    token = process_env().init_token(f"loss-{uuid.uuid4().hex[:8]}")
    srv = server(server={"front": "native"},
                 token={"poll_interval": 0.1, "rescan_interval": 0.1})
    calls = srv._bg.running.calls
    assert calls is not None and SIGN in calls.methods
    teller = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", "teller-1"))
    session = teller.Login(token_pb2.TokenLoginRequest(token_serial=token.serial,
                                                       pin=token.pin), timeout=30).session
    key = teller.GenerateKeyPair(token_pb2.TokenGenerateKeyPairRequest(
        session=session, spec=token_pb2.TOKEN_KEY_SPEC_EC_P256, label="loss"), timeout=30)

    def sign(i: int) -> tuple[str, str, str]:
        digest = hashlib.sha256(b"%d" % i).digest()
        return _outcome(lambda: teller.Sign(token_pb2.TokenSignRequest(
            session=session, key_id=key.key_id, digest=digest), timeout=60))

    assert sign(0)[0] == "OK"
    # Signatures the daemon has taken and not answered yet when its end of the link dies.
    real = calls.methods[SIGN]
    gate, arrived = threading.Event(), threading.Semaphore(0)

    def held(request: Any, answer: Any, alone: bool) -> None:
        def later() -> None:
            gate.wait(60)
            real.serve(request, answer, False)  # answers a connection that is gone

        arrived.release()
        context = contextvars.copy_context()  # the caller the link set
        threading.Thread(target=context.run, args=(later,), daemon=True).start()

    calls.methods[SIGN] = LinkedMethod(real.request_type, held)
    try:
        with ThreadPoolExecutor(6) as pool:
            pending = [pool.submit(sign, i) for i in range(1, 6)]
            for _ in pending:
                assert arrived.acquire(timeout=30)
            assert _kill(calls, what) == 1
            answers = [f.result(timeout=90) for f in pending]
    finally:
        gate.set()
        calls.methods[SIGN] = real
    for code, reason, message in answers:
        assert (code, reason) == ("UNAVAILABLE", "UNREACHABLE"), answers
        assert "may have been carried out" in message, message
    assert wait_for(lambda: sign(100)[0] == "OK", 60)
    assert [sign(i)[0] for i in range(101, 106)] == ["OK"] * 5
