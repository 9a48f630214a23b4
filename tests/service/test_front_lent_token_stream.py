"""SignStream on a token login lent to authd-front (native/front/streams.cc LinkedStream,
token_lending.h): that caller's stream requests on the lent handle are signed by authd-front
as its lent unary Signs are, answered in order and told to the daemon (counted, timed,
access-logged); the first request it cannot sign, and every later one, get the daemon's
answers — after a Logout mid-stream, at a bad request, for another caller. Real SoftHSM2
tokens, a real daemon and authd-front."""
# ruff: noqa: F811  (the token fixture imported from tests.service.test_front_lent_token)

from __future__ import annotations

import hashlib
import queue
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from authd.token.feature import TokenFeature
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import process_env
from tests.conftest import wait_for
from tests.service.test_front_answers import _scrape
from tests.service.test_front_lent_token import (  # noqa: F401  (the token fixture)
    _key,
    _lend,
    _login,
    _native,
    _sign,
    _stub,
    _verify,
    token,
)

SIGN_STREAM = "/authd.v1.TokenService/SignStream"


def _rest(call: Any) -> tuple[list[Any], tuple[str, str] | None]:
    """A SignStream's responses still to come, and its error (code, details) if it ended
    with one."""
    got: list[Any] = []
    try:
        for response in call:
            got.append(response)
    except grpc.RpcError as exc:
        return got, (exc.code().name, exc.details() or "")
    return got, None


def _stream(stub: Any, requests: list[Any]) -> tuple[list[Any], tuple[str, str] | None]:
    return _rest(stub.SignStream(iter(requests), timeout=30))


def _lent_count(srv: Any) -> float:
    return _scrape(srv).get(("authd_lent_stream_requests_total", (("method", SIGN_STREAM),)),
                            0.0)


def _streams_count(srv: Any) -> float:
    return _scrape(srv).get(("authd_rpc_seconds_count", (("method", SIGN_STREAM),)), 0.0)

def _queued(stub: Any) -> tuple[queue.Queue[Any], Any]:
    """A SignStream whose requests are put one by one (None: the half-close)."""
    requests: queue.Queue[Any] = queue.Queue()

    def given() -> Iterator[Any]:
        while (request := requests.get()) is not None:
            yield request

    return requests, stub.SignStream(given(), timeout=30)

@dataclass
class _LentEc:
    """A login lent to authd-front, with an EC P-256 key on it."""

    srv: Any
    stub: Any
    session: str
    key: Any
    public: Any
    lending: Any
    rsa_key: Any = None  # with_rsa: an RSA-2048 key too, made before the login was lent
    rsa_public: Any = None

    def request(self) -> Any:
        return pb.TokenSignRequest(session=self.session, key_id=self.key.key_id, data=b"x")


def _lent_ec(server: Any, token: Any, *, with_rsa: bool = False) -> _LentEc:
    srv = _native(server)
    stub = _stub(srv)
    session = _login(stub, token)
    key, public = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    # A new key recalls a lease (and a login is lent once): every key is made first.
    rsa_key, rsa_public = (_key(stub, session, pb.TOKEN_KEY_SPEC_RSA_2048) if with_rsa
                           else (None, None))
    return _LentEc(srv, stub, session, key, public, _lend(srv, stub, session, key.key_id),
                   rsa_key, rsa_public)


def _signed_one_by_one(ec: _LentEc, requests: queue.Queue[Any], call: Any, times: int) -> None:
    """Puts ``times`` requests on a queued stream, each signature verified before the next."""
    for _ in range(times):
        requests.put(ec.request())
        _verify(ec.public, next(call), b"x", pb.TOKEN_SIGN_ECDSA_SHA256)



def test_lent_stream_signatures_verify_and_are_counted(server, native_front, token) -> None:
    ec = _lent_ec(server, token, with_rsa=True)
    srv, stub, session, lending = ec.srv, ec.stub, ec.session, ec.lending
    ec_key, ec_public, rsa_key, rsa_public = ec.key, ec.public, ec.rsa_key, ec.rsa_public
    streamed, served = lending.streamed_total, lending.served_total
    counted, streams = _lent_count(srv), _streams_count(srv)
    cases = [(ec_key, ec_public, pb.TOKEN_SIGN_ALGORITHM_UNSPECIFIED, pb.TOKEN_SIGN_ECDSA_SHA256),
             (rsa_key, rsa_public, pb.TOKEN_SIGN_ALGORITHM_UNSPECIFIED,
              pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256),
             (rsa_key, rsa_public, pb.TOKEN_SIGN_RSA_PSS_SHA256, pb.TOKEN_SIGN_RSA_PSS_SHA256)]
    done = 0
    for key, public, asked, signed in cases:
        data = [f"transfer {i}".encode() for i in range(12)]
        requests = []
        for i, each in enumerate(data):  # over data and over a digest, in turn
            by = {"data": each} if i % 2 else {"digest": hashlib.sha256(each).digest()}
            requests.append(pb.TokenSignRequest(session=session, key_id=key.key_id,
                                                algorithm=asked, **by))
        got, error = _stream(stub, requests)
        assert error is None and len(got) == len(data)
        for response, each in zip(got, data, strict=True):  # in order
            assert response.algorithm == signed
            _verify(public, response, each, signed)
        done += len(data)
    # RSA PKCS#1 v1.5 is deterministic: the lent stream's signature is the daemon's.
    same = pb.TokenSignRequest(session=session, key_id=rsa_key.key_id, data=b"same")
    lent, _ = _stream(stub, [same])
    done += 1
    # Told in the lease's batches: every one of them signed lent, none by the daemon.
    assert wait_for(lambda: lending.streamed_total == streamed + done, timeout=10)
    assert lending.served_total == served
    assert _lent_count(srv) == counted + done
    assert _streams_count(srv) == streams  # the daemon saw none of these streams
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    session = _login(stub, token)
    daemons, error = _stream(stub, [pb.TokenSignRequest(session=session,
                                                        key_id=rsa_key.key_id, data=b"same")])
    assert error is None and daemons[0].signature == lent[0].signature
    assert lending.streamed_total == streamed + done  # not lent: this login signed no unary



def test_logout_mid_stream_leaves_the_rest_to_the_daemon(server, native_front, token) -> None:
    ec = _lent_ec(server, token)
    stub, session, key, lending = ec.stub, ec.session, ec.key, ec.lending
    streamed = lending.streamed_total
    request = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
    requests, call = _queued(stub)
    _signed_one_by_one(ec, requests, call, 3)
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    assert not lending.lent(session)  # given back before the Logout was answered
    assert lending.streamed_total == streamed + 3  # told with the return
    requests.put(request)
    requests.put(request)
    requests.put(None)
    rest, error = _rest(call)
    # The daemon's answer for an ended login, as a stream begun now gets it.
    assert rest == [] and error is not None and error[0] == "NOT_FOUND", error
    assert _stream(stub, [request, request]) == ([], error)
    assert lending.streamed_total == streamed + 3


def test_an_error_mid_stream_ends_it_with_the_daemons_status(server, native_front,
                                                             token) -> None:
    ec = _lent_ec(server, token)
    srv, stub, session, key, public, lending = (ec.srv, ec.stub, ec.session, ec.key,
                                                ec.public, ec.lending)
    good = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
    unknown = pb.TokenSignRequest(session=session, key_id=b"no such key", data=b"x")
    neither = pb.TokenSignRequest(session=session, key_id=key.key_id)  # no data, no digest
    limit = srv.app.require(TokenFeature).service.settings.max_sign_bytes
    big = pb.TokenSignRequest(session=session, key_id=key.key_id,
                              data=b"x" * (limit + 1))
    streamed = lending.streamed_total
    lent: dict[str, tuple[list[Any], tuple[str, str] | None]] = {}
    for name, bad in (("unknown", unknown), ("neither", neither), ("big", big)):
        lent[name] = _stream(stub, [good, good, bad, good])
    assert wait_for(lambda: lending.streamed_total == streamed + 6, timeout=10)
    assert lending.lent(session)  # kept: the daemon answered what it could not sign
    # The same streams on a login that is not lent (no unary Sign lent it): the daemon's.
    other = _login(stub, token)
    assert not lending.lent(other)
    for name, bad in (("unknown", unknown), ("neither", neither), ("big", big)):
        def on(request: Any) -> Any:
            moved = pb.TokenSignRequest()
            moved.CopyFrom(request)
            moved.session = other
            return moved

        daemons = _stream(stub, [on(good), on(good), on(bad), on(good)])
        got, error = lent[name]
        assert error is not None and error[0] != "OK", (name, error)
        assert error == daemons[1], (name, error, daemons[1])
        assert len(got) == len(daemons[0]) == 2, name
        for response in got:
            _verify(public, response, b"x", pb.TOKEN_SIGN_ECDSA_SHA256)


def test_another_callers_stream_gets_the_daemons_answer(server, native_front, token) -> None:
    srv = _native(server)
    stub = _stub(srv)
    colleague = _stub(srv, "teller-2")
    backend = token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "backend", "ib"))
    session = _login(stub, token)
    key, _ = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    refused = _stream(backend, [])  # the daemon's answer to a role that may not sign
    assert refused[1] is not None and refused[1][0] == "PERMISSION_DENIED", refused
    lending = _lend(srv, stub, session, key.key_id)
    assert _stream(backend, []) == refused  # a stream begun while a login is lent
    streamed = lending.streamed_total
    request = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
    got, error = _stream(colleague, [request, request])
    assert got == [] and error is not None, error
    assert error[0] == "NOT_FOUND" and "another caller" in error[1], error
    assert lending.lent(session)  # kept for its own caller
    got, error = _stream(stub, [request, request])
    assert error is None and len(got) == 2
    assert wait_for(lambda: lending.streamed_total == streamed + 2, timeout=10)


def test_a_token_removed_mid_stream_is_unavailable_as_on_the_daemons_path(
        server, native_front, token) -> None:
    ec = _lent_ec(server, token)
    stub, session, key, lending = ec.stub, ec.session, ec.key, ec.lending
    streamed = lending.streamed_total
    request = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
    requests, call = _queued(stub)
    _signed_one_by_one(ec, requests, call, 1)
    assert wait_for(lambda: lending.streamed_total == streamed + 1, timeout=10)  # lent
    process_env().unplug(token)
    try:
        error = None
        for _ in range(200):  # the watcher notices within a poll interval
            requests.put(request)
            try:
                next(call)
            except grpc.RpcError as exc:
                error = (exc.code().name, exc.details() or "")
                break
            threading.Event().wait(0.05)
        assert error is not None and error[0] == "UNAVAILABLE", error
        assert "not present" in error[1], error
        assert wait_for(lambda: not lending.lent(session), timeout=10)  # its return told
    finally:
        requests.put(None)
        process_env().plug(token)


def test_a_lent_stream_the_client_cancels_ends_alone(server, native_front, token) -> None:
    ec = _lent_ec(server, token)
    stub, session, key, lending = ec.stub, ec.session, ec.key, ec.lending
    streamed = lending.streamed_total
    request = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
    requests, call = _queued(stub)
    _signed_one_by_one(ec, requests, call, 2)
    call.cancel()
    assert _rest(call)[1] == ("CANCELLED", "Locally cancelled by application!")
    requests.put(None)
    assert lending.lent(session)  # the lease and the next stream go on
    got, error = _stream(stub, [request] * 3)
    assert error is None and len(got) == 3
    assert wait_for(lambda: lending.streamed_total == streamed + 5, timeout=10)
    assert _sign(stub, session, key.key_id, data=b"x").signature


def test_a_front_stopped_with_a_lent_stream_open_ends_it_and_exits_cleanly(
        server, native_front, token) -> None:
    """SIGTERM while a lent stream is open (signed here, nothing of it on the link), waiting
    for its client's next request: the front end ends it once its grace ran out and exits 0."""
    ec = _lent_ec(server, token)
    requests, call = _queued(ec.stub)
    _signed_one_by_one(ec, requests, call, 2)
    proc = ec.srv._bg.running.front._proc
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=ec.srv.config.server.grace_seconds + 8) == 0
    got, error = _rest(call)
    assert got == [] and error is not None and error[0] in ("CANCELLED", "UNAVAILABLE"), error
    requests.put(None)


def test_requests_sent_ahead_are_signed_at_once_and_answered_in_order(
        server, native_front, token) -> None:
    ec = _lent_ec(server, token, with_rsa=True)
    srv, stub, session, lending = ec.srv, ec.stub, ec.session, ec.lending
    ec_key, ec_public, rsa_key, rsa_public = ec.key, ec.public, ec.rsa_key, ec.rsa_public
    streamed, served = lending.streamed_total, lending.served_total
    counted = _lent_count(srv)
    done = 0
    for key, public, signed in ((rsa_key, rsa_public, pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256),
                                (ec_key, ec_public, pb.TOKEN_SIGN_ECDSA_SHA256)):
        data = [f"burst {i}".encode() for i in range(48)]
        # The client writes them all without waiting for an answer (gRPC reads the iterator
        # ahead of the responses).
        got, error = _stream(stub, [pb.TokenSignRequest(session=session, key_id=key.key_id,
                                                        data=each) for each in data])
        assert error is None and len(got) == len(data)
        for response, each in zip(got, data, strict=True):  # each in its place
            _verify(public, response, each, signed)
        done += len(data)
    assert wait_for(lambda: lending.streamed_total == streamed + done, timeout=10)
    assert lending.served_total == served
    assert _lent_count(srv) == counted + done
    # More than two requests of a stream were signing at once (the front end's high-water
    # mark; it reads up to four ahead, as many as the link's signer threads).
    assert _scrape(srv).get(("authd_front_lent_stream_signing_max", ()), 0.0) >= 3


def test_a_bad_request_in_a_burst_gets_the_daemons_error_after_the_ones_before(
        server, native_front, token) -> None:
    ec = _lent_ec(server, token, with_rsa=True)
    srv, stub, session, lending = ec.srv, ec.stub, ec.session, ec.lending
    ec_key, ec_public, rsa_key, rsa_public = ec.key, ec.public, ec.rsa_key, ec.rsa_public
    cases = [(rsa_key, rsa_public, pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256, before)
             for before in (1, 2, 5)]
    cases += [(ec_key, ec_public, pb.TOKEN_SIGN_ECDSA_SHA256, before) for before in (1, 6)]

    def burst(login: str, key_id: bytes, before: int) -> list[Any]:
        """`before` good requests, one with an unknown key, six good ones, all sent ahead."""
        return [pb.TokenSignRequest(session=login, data=f"{before} {i}".encode(),
                                    key_id=b"no such key" if i == before else key_id)
                for i in range(before + 1 + 6)]

    streamed, served = lending.streamed_total, lending.served_total
    counted = _lent_count(srv)
    lent = [_stream(stub, burst(session, key.key_id, before)) for key, _, _, before in cases]
    done = sum(before for *_, before in cases)
    # Only the signatures answered are served: none of those after the bad request (signed
    # here or not: the daemon's stream ended at its error).
    assert wait_for(lambda: lending.streamed_total == streamed + done, timeout=10)
    assert lending.lent(session)  # kept: the daemon answered what it could not sign
    # The same streams on a login that is not lent (a new login recalls the lease, which
    # tells what was not told yet): the daemon's answers.
    other = _login(stub, token)
    assert not lending.lent(other)
    assert lending.streamed_total == streamed + done
    assert lending.served_total == served
    assert _lent_count(srv) == counted + done
    for (key, public, signed, before), (got, error) in zip(cases, lent, strict=True):
        daemons = _stream(stub, burst(other, key.key_id, before))
        assert error is not None and error[0] == "NOT_FOUND", (before, error)
        assert error == daemons[1], (before, error, daemons[1])
        assert len(got) == len(daemons[0]) == before, (before, len(got))
        for response, request in zip(got, burst(session, key.key_id, before), strict=False):
            _verify(public, response, request.data, signed)
