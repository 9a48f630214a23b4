"""A token login lent to authd-front (authd/token/lending.py, native/front/token_lending.h):
the first linked unary Sign of a login lends it, and authd-front signs that caller's next
common Signs on its own instance of the module. The signatures verify with the key's public
key (EC P-256, RSA PKCS#1 v1.5 and PSS); the lent Signs keep the login alive and are counted
as the daemon's; Logout, another caller, a token removed get the daemon's answers; the PIN
appears in no log. Real SoftHSM2 tokens."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from authd.token.feature import TokenFeature
from authd.token.lending import TokenLending
from authd.token.sessions import TokenLogin
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import DEFAULT_PIN, SoftHsmToken, process_env
from tests.conftest import wait_for
from tests.service.test_front_answers import _scrape

SIGN = "/authd.v1.TokenService/Sign"
FAST = {"poll_interval": 0.1, "rescan_interval": 0.1}
LEND_AFTER = 2


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"lent-{uuid.uuid4().hex[:8]}")


def _native(server: Any, **token: Any) -> Any:
    return server(server={"front": "native", "metrics_listen": "127.0.0.1:0"},
                  token={**FAST, "lend_after_signs": LEND_AFTER, **token})


def _lending(srv: Any) -> TokenLending:
    method = srv._bg.running.calls.methods[SIGN]
    assert isinstance(method.leases, TokenLending)
    return method.leases


def _stub(srv: Any, subject: str = "teller-1") -> Any:
    return token_pb2_grpc.TokenServiceStub(srv.channel("bank-a", "branch", subject))


def _login(stub: Any, token: SoftHsmToken) -> str:
    wait_for(lambda: any(t.serial == token.serial for t in stub.ListTokens(
        pb.ListTokensRequest(), timeout=30).tokens), timeout=20)
    return str(stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=DEFAULT_PIN),
                          timeout=30).session)


def _key(stub: Any, session: str, spec: int) -> Any:
    key = stub.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=session, spec=spec, label="lent"), timeout=30)
    return key, serialization.load_der_public_key(key.public_key_der)


def _sign(stub: Any, session: str, key_id: bytes, **fields: Any) -> Any:
    return stub.Sign(pb.TokenSignRequest(session=session, key_id=key_id, **fields), timeout=30)


def _answer(call: Any) -> tuple[Any, ...]:
    try:
        return ("OK", call())
    except grpc.RpcError as exc:
        return (exc.code().name, exc.details())


def _lend(srv: Any, stub: Any, session: str, key_id: bytes) -> TokenLending:
    """The login's first Signs, signed by the daemon, the last of them lending it."""
    lending = _lending(srv)
    for _ in range(LEND_AFTER):
        assert not lending.lent(session)
        _sign(stub, session, key_id, data=b"first")
    assert lending.lent(session)
    return lending


def _lent_login(srv: Any, token: SoftHsmToken) -> tuple[Any, str, Any, Any, TokenLending,
                                                         TokenLogin]:
    """A login with an EC P-256 key, lent: its stub, handle, key, public key, lending and the
    daemon's login."""
    stub = _stub(srv)
    session = _login(stub, token)
    key, public = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lend(srv, stub, session, key.key_id)
    login = srv.app.require(TokenFeature).service.sessions.peek(session)
    assert login is not None
    return stub, session, key, public, lending, login


def _verify(public: Any, response: Any, data: bytes, algorithm: int) -> None:
    digest = hashlib.sha256(data).digest()
    prehashed = utils.Prehashed(hashes.SHA256())
    if algorithm == pb.TOKEN_SIGN_ECDSA_SHA256:
        public.verify(response.signature, digest, ec.ECDSA(prehashed))
    elif algorithm == pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256:
        public.verify(response.signature, digest, padding.PKCS1v15(), prehashed)
    else:
        public.verify(response.signature, digest,
                      padding.PSS(padding.MGF1(hashes.SHA256()), 32), prehashed)


def _signs_count(srv: Any) -> float:
    return _scrape(srv).get(("authd_rpc_seconds_count", (("method", SIGN),)), 0.0)


def test_lent_signatures_verify_with_the_public_key(server, native_front,
                                                    token: SoftHsmToken) -> None:
    srv = _native(server)
    stub = _stub(srv)
    session = _login(stub, token)
    ec_key, ec_public = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    rsa_key, rsa_public = _key(stub, session, pb.TOKEN_KEY_SPEC_RSA_2048)
    lending = _lend(srv, stub, session, ec_key.key_id)
    served = lending.served_total
    cases = [(ec_key, ec_public, pb.TOKEN_SIGN_ALGORITHM_UNSPECIFIED, pb.TOKEN_SIGN_ECDSA_SHA256),
             (ec_key, ec_public, pb.TOKEN_SIGN_ECDSA_SHA256, pb.TOKEN_SIGN_ECDSA_SHA256),
             (rsa_key, rsa_public, pb.TOKEN_SIGN_ALGORITHM_UNSPECIFIED,
              pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256),
             (rsa_key, rsa_public, pb.TOKEN_SIGN_RSA_PSS_SHA256, pb.TOKEN_SIGN_RSA_PSS_SHA256)]
    for key, public, asked, signed in cases:
        for i in range(5):
            data = f"transfer {i}".encode()
            by_data = _sign(stub, session, key.key_id, algorithm=asked, data=data)
            by_digest = _sign(stub, session, key.key_id, algorithm=asked,
                              digest=hashlib.sha256(data).digest())
            for response in (by_data, by_digest):
                assert response.algorithm == signed
                _verify(public, response, data, signed)
    # RSA PKCS#1 v1.5 is deterministic: the lent signature is the daemon's, byte for byte.
    lent = _sign(stub, session, rsa_key.key_id, data=b"same")
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    assert lending.served_total == served + 4 * 10 + 1  # every one of them signed lent
    session = _login(stub, token)
    assert _sign(stub, session, rsa_key.key_id, data=b"same").signature == lent.signature


def test_lent_signs_keep_the_login_alive_and_are_counted(server, native_front,
                                                          token: SoftHsmToken) -> None:
    srv = _native(server, session_idle_seconds=1.0)
    stub, session, key, public, lending, login = _lent_login(srv, token)
    before = _signs_count(srv)
    served = lending.served_total
    created = login.created
    # Signs for three idle times: told in batches, each pushing the idle expiry on.
    done = 0
    while login.last_used - created < 3.0:
        _verify(public, _sign(stub, session, key.key_id, data=b"x"), b"x",
                pb.TOKEN_SIGN_ECDSA_SHA256)
        done += 1
    assert lending.lent(session)
    wait_for(lambda: lending.served_total == served + done, timeout=10)
    assert _signs_count(srv) == before + done
    # Unused, it ends after its idle time: the lease is recalled, and a Sign gets the
    # daemon's answer for an ended login.
    assert wait_for(lambda: srv.app.require(TokenFeature).service.sessions.peek(session)
                    is None, timeout=20)
    assert wait_for(lambda: not lending.lent(session), timeout=10)  # recalled, given back
    code, details = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert code == "NOT_FOUND", details


def test_a_lent_login_signs_nothing_after_its_idle_time(server, native_front,
                                                      token: SoftHsmToken) -> None:
    """Once the idle time has passed since the login's last use (the daemon's clock, before
    its sweeper has recalled the lease), the next Sign is the daemon's NOT_FOUND: authd-front
    signs nothing past the lease's idle limit, and the lease's Signs are counted exactly."""
    srv = _native(server, session_idle_seconds=2.0)  # the sweeper runs every 0.5 s
    stub, session, key, _, lending, login = _lent_login(srv, token)
    before, served = _signs_count(srv), lending.served_total
    for _ in range(3):
        _sign(stub, session, key.key_id, data=b"x")
    wait_for(lambda: lending.served_total == served + 3, timeout=10)  # told: the login used
    assert _signs_count(srv) == before + 3
    # The clock is what is tested here: polled closely, the Sign comes well before the
    # sweeper's next round would recall the lease.
    wait_for(lambda: time.monotonic() - login.last_used > 2.0, timeout=10, interval=0.002)
    code, details = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert code == "NOT_FOUND", details
    assert wait_for(lambda: not lending.lent(session), timeout=10)
    assert lending.served_total == served + 3


def test_a_lent_login_signs_nothing_after_its_maximum_lifetime(server, native_front,
                                                             token: SoftHsmToken) -> None:
    """Signs without a pause across the login's maximum lifetime: none that started after it
    (beyond the link's latency) is answered OK, the first refused is the daemon's NOT_FOUND,
    and the lease's served count is exactly the OK answers after it was lent."""
    srv = _native(server, session_idle_seconds=2.0, session_max_seconds=2.0)
    stub, session, key, _, lending, login = _lent_login(srv, token)
    deadline = login.created + 2.0
    served = lending.served_total
    answers: list[tuple[float, str]] = []
    while not answers or (answers[-1][1] == "OK" and answers[-1][0] < deadline + 5.0):
        started = time.monotonic()
        answers.append((started, _answer(lambda: _sign(stub, session, key.key_id,
                                                       data=b"x"))[0]))
    late = [round(t - deadline, 4) for t, code in answers if code == "OK" and t > deadline + 0.02]
    assert late == [], late
    assert answers[-1][1] == "NOT_FOUND", answers[-1]
    assert wait_for(lambda: not lending.lent(session), timeout=10)
    assert lending.served_total == served + sum(code == "OK" for _, code in answers)


def test_logout_and_another_caller_get_the_daemons_answers(server, native_front,
                                                           token: SoftHsmToken) -> None:
    srv = _native(server)
    stub = _stub(srv)
    colleague = _stub(srv, "teller-2")
    session = _login(stub, token)
    key, _ = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lend(srv, stub, session, key.key_id)
    served = lending.served_total
    other = _answer(lambda: _sign(colleague, session, key.key_id, data=b"x"))
    assert other[0] == "NOT_FOUND" and "another caller" in other[1], other
    assert lending.lent(session)  # kept for its own caller
    _sign(stub, session, key.key_id, data=b"x")
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    assert not lending.lent(session)
    assert lending.served_total == served + 1
    after = _answer(lambda: _sign(stub, session, key.key_id, data=b"x"))
    assert after[0] == "NOT_FOUND", after
    assert lending.served_total == served + 1


def test_a_removed_token_is_unavailable_as_on_the_daemons_path(server, native_front,
                                                               token: SoftHsmToken) -> None:
    srv = _native(server)
    stub = _stub(srv)
    session = _login(stub, token)
    key, _ = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lend(srv, stub, session, key.key_id)
    process_env().unplug(token)
    try:
        with pytest.raises(grpc.RpcError) as err:
            for _ in range(200):  # the watcher notices within a poll interval
                _sign(stub, session, key.key_id, data=b"x")
                threading.Event().wait(0.05)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "not present" in (err.value.details() or "")
        assert wait_for(lambda: not lending.lent(session), timeout=10)  # its return told
    finally:
        process_env().plug(token)


def test_the_pin_is_in_no_log(server, native_front, capfd, caplog) -> None:
    pin = f"{uuid.uuid4().int % 10**8:08d}"
    token = process_env().init_token(f"lent-{uuid.uuid4().hex[:8]}", pin=pin)
    caplog.set_level(logging.DEBUG)
    srv = _native(server)
    stub = _stub(srv)
    wait_for(lambda: any(t.serial == token.serial for t in stub.ListTokens(
        pb.ListTokensRequest(), timeout=30).tokens), timeout=20)
    session = stub.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=pin),
                         timeout=30).session
    key, _ = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lend(srv, stub, session, key.key_id)
    for _ in range(10):
        _sign(stub, session, key.key_id, data=b"x")
    stub.Logout(pb.TokenLogoutRequest(session=session), timeout=30)
    assert lending.served_total >= 10
    srv.stop()
    out, err = capfd.readouterr()
    assert pin not in out and pin not in err
    assert pin not in caplog.text
    assert "lent token login back" in caplog.text  # the daemon's log was captured


def test_a_login_is_lent_only_to_the_front_end_the_daemon_started(server, native_front,
                                                                   token: SoftHsmToken) -> None:
    srv = _native(server)
    calls = srv._bg.running.calls
    started = calls.front_pid
    calls.front_pid = lambda: started() + 1  # the link's peer is not the process it started
    stub = _stub(srv)
    session = _login(stub, token)
    key, public = _key(stub, session, pb.TOKEN_KEY_SPEC_EC_P256)
    lending = _lending(srv)
    for _ in range(LEND_AFTER + 3):
        _verify(public, _sign(stub, session, key.key_id, data=b"x"), b"x",
                pb.TOKEN_SIGN_ECDSA_SHA256)
    assert not lending.lent(session) and lending.lent_total == 0
