"""TokenService against faults and attackers, through a real gRPC channel on SoftHSM2 tokens:
repeated wrong SO PINs, every request field with bad values, callers that give up mid-call,
other callers' handles; secrets never in an answer or a DEBUG log."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from prometheus_client import generate_latest

from authd import metrics
from authd.errors import details_of
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.conftest import TestServer, make_config, wait_for

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
WRONG_SO_PIN = "87654321"


def stub(srv: Any, institution: str = "bank-a", role: str = "branch",
         subject: str = "teller-1") -> token_pb2_grpc.TokenServiceStub:
    return token_pb2_grpc.TokenServiceStub(srv.channel(institution, role, subject))


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, grpc.RpcError]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details() or "", err.value


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"flt-{uuid.uuid4().hex[:8]}")


def test_wrong_so_pins_are_counted_and_lock_unblocking_on_both_stores(
        server: Callable[..., Any], store_url: str, token: SoftHsmToken) -> None:
    """SoftHSM2 never locks the SO PIN; authd counts wrong ones like the user PIN's (3,
    DOMAIN §2) and then refuses UnblockPin without trying the SO PIN on the token."""
    srv = server(store_url=store_url, **FAST)
    s = stub(srv)

    def unblock(so_pin: str) -> Any:
        return s.UnblockPin(pb.TokenUnblockPinRequest(
            token_serial=token.serial, so_pin=so_pin, new_pin="654321", operator="kim",
            reason="customer forgot the PIN"))

    # a right SO PIN resets the count
    code, message, _ = code_of(lambda: unblock(WRONG_SO_PIN))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "2 attempt(s) left" in message
    unblock(token.so_pin)
    for left in (2, 1):
        code, message, err = code_of(lambda: unblock(WRONG_SO_PIN))
        assert code == grpc.StatusCode.PERMISSION_DENIED, message
        assert f"wrong SO PIN, {left} attempt(s) left" in message
        assert WRONG_SO_PIN not in message and details_of(err).metadata == {
            "attempts_left": str(left)}
    code, message, _ = code_of(lambda: unblock(WRONG_SO_PIN))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "SO PIN is now locked" in message
    # locked: even the right SO PIN is not tried, and the user PIN stays as it was
    code, message, _ = code_of(lambda: unblock(token.so_pin))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "re-initialized" in message
    assert s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="654321")).session


# --------------------------------------------------------------------------- the input matrix


@dataclass
class Bench:
    """One daemon and one logged-in token for the whole matrix."""

    srv: TestServer
    token: SoftHsmToken
    teller: token_pb2_grpc.TokenServiceStub
    session: str
    key_id: bytes
    public_der: bytes

    def objects(self) -> list[tuple[bytes, str, bool]]:
        listed = self.teller.ListObjects(pb.TokenListObjectsRequest(session=self.session))
        return sorted((k.key_id, k.label, k.has_certificate) for k in listed.keys)


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    root = Path(tempfile.mkdtemp(prefix="authd-token-faults-"))
    srv = TestServer(make_config(root / "node", None, **FAST))
    token = process_env().init_token(f"mtx-{uuid.uuid4().hex[:8]}")
    teller = stub(srv)
    # A token initialized a moment ago is seen once the daemon's next scan finds it.
    assert wait_for(lambda: token.serial in {
        t.serial for t in teller.ListTokens(pb.ListTokensRequest(), timeout=30).tokens},
        timeout=30)
    session = teller.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin)).session
    key = teller.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="matrix"))
    try:
        yield Bench(srv, token, teller, session, key.key_id, key.public_key_der)
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


HUGE_TEXT = "x" * 12_000  # 12 KB: within every method's request limit, past every field's
HUGE_BYTES = b"\x30" * 12_000
BAD = grpc.StatusCode.INVALID_ARGUMENT
GONE = grpc.StatusCode.NOT_FOUND
Build = Callable[[Bench], tuple[str, Any]]

# (case, build(bench) -> (method, request), expected status)
MATRIX: list[tuple[str, Build, grpc.StatusCode]] = [
    ("login serial empty", lambda b: ("Login", pb.TokenLoginRequest(pin="123456")), BAD),
    ("login serial NUL", lambda b: ("Login", pb.TokenLoginRequest(
        token_serial=b.token.serial[:4] + "\x00", pin="123456")), BAD),
    ("login serial 12 KB", lambda b: ("Login", pb.TokenLoginRequest(
        token_serial=HUGE_TEXT, pin="123456")), BAD),
    ("login pin empty", lambda b: ("Login", pb.TokenLoginRequest(
        token_serial=b.token.serial)), BAD),
    ("login pin 12 KB", lambda b: ("Login", pb.TokenLoginRequest(
        token_serial=b.token.serial, pin=HUGE_TEXT)), BAD),
    ("unblock operator NUL", lambda b: ("UnblockPin", pb.TokenUnblockPinRequest(
        token_serial=b.token.serial, so_pin="1", new_pin="2", operator="k\x00", reason="r")),
     BAD),
    ("unblock reason 12 KB", lambda b: ("UnblockPin", pb.TokenUnblockPinRequest(
        token_serial=b.token.serial, so_pin="1", new_pin="2", operator="k", reason=HUGE_TEXT)),
     BAD),
    ("unblock new pin empty", lambda b: ("UnblockPin", pb.TokenUnblockPinRequest(
        token_serial=b.token.serial, so_pin="1", operator="k", reason="r")), BAD),
    ("generate spec unknown", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=99, label="x")), BAD),
    ("generate spec negative", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=-1, label="x")), BAD),
    ("generate label NUL", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="a\x00b")), BAD),
    ("generate label 12 KB", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label=HUGE_TEXT)), BAD),
    ("generate key id 12 KB", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="x", key_id=HUGE_BYTES)), BAD),
    ("generate key id taken", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=b.session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="x", key_id=b.key_id)),
     grpc.StatusCode.ALREADY_EXISTS),
    ("generate session 12 KB", lambda b: ("GenerateKeyPair", pb.TokenGenerateKeyPairRequest(
        session=HUGE_TEXT, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="x")), GONE),
    ("csr subject empty", lambda b: ("CreateCsr", pb.TokenCreateCsrRequest(
        session=b.session, key_id=b.key_id)), BAD),
    ("csr subject NUL", lambda b: ("CreateCsr", pb.TokenCreateCsrRequest(
        session=b.session, key_id=b.key_id, subject="CN=a\x00b")), BAD),
    ("csr subject 12 KB", lambda b: ("CreateCsr", pb.TokenCreateCsrRequest(
        session=b.session, key_id=b.key_id, subject="CN=" + HUGE_TEXT)), BAD),
    ("csr subject not RFC 4514", lambda b: ("CreateCsr", pb.TokenCreateCsrRequest(
        session=b.session, key_id=b.key_id, subject="garbage")), BAD),
    ("csr unknown key", lambda b: ("CreateCsr", pb.TokenCreateCsrRequest(
        session=b.session, key_id=b"\x99", subject="CN=a")), GONE),
    ("import certificate empty", lambda b: ("ImportCertificate",
        pb.TokenImportCertificateRequest(session=b.session)), BAD),
    ("import certificate 12 KB", lambda b: ("ImportCertificate",
        pb.TokenImportCertificateRequest(session=b.session, certificate=HUGE_BYTES)), BAD),
    ("import certificate junk PEM", lambda b: ("ImportCertificate",
        pb.TokenImportCertificateRequest(session=b.session, certificate=(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))), BAD),
    ("list neither", lambda b: ("ListObjects", pb.TokenListObjectsRequest()), BAD),
    ("list serial NUL", lambda b: ("ListObjects", pb.TokenListObjectsRequest(
        token_serial="\x00")), BAD),
    ("sign no input", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id)), BAD),
    ("sign algorithm unknown", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, data=b"x", algorithm=99)), BAD),
    ("sign algorithm not the key's", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, data=b"x", algorithm=pb.TOKEN_SIGN_RSA_PSS_SHA256)),
     BAD),
    ("sign data max_sign_bytes + 1", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, data=bytes((1 << 20) + 1))), BAD),
    ("sign data 3 MB", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, data=bytes(3_000_000))),
     grpc.StatusCode.RESOURCE_EXHAUSTED),  # refused before it is parsed (authd/limits.py)
    ("login pin 3 MB", lambda b: ("Login", pb.TokenLoginRequest(
        token_serial=b.token.serial, pin="1" * 3_000_000)), grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("sign digest 31 bytes", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, digest=bytes(31))), BAD),
    ("sign digest 12 KB", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b.key_id, digest=HUGE_BYTES)), BAD),
    ("sign key id 12 KB", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=HUGE_BYTES, data=b"x")), BAD),
    ("sign key id empty", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, data=b"x")), BAD),
    ("sign unknown key", lambda b: ("Sign", pb.TokenSignRequest(
        session=b.session, key_id=b"\x99", data=b"x")), GONE),
    ("sign session NUL", lambda b: ("Sign", pb.TokenSignRequest(
        session="\x00", key_id=b.key_id, data=b"x")), GONE),
    ("verify neither", lambda b: ("Verify", pb.TokenVerifyRequest(
        key_id=b.key_id, data=b"x", signature=b"s")), BAD),
    ("verify serial 12 KB", lambda b: ("Verify", pb.TokenVerifyRequest(
        token_serial=HUGE_TEXT, key_id=b.key_id, data=b"x", signature=b"s")), BAD),
    ("delete scope unknown", lambda b: ("DeleteObject", pb.TokenDeleteObjectRequest(
        session=b.session, key_id=b.key_id, scope=99)), BAD),
    ("delete key id empty", lambda b: ("DeleteObject", pb.TokenDeleteObjectRequest(
        session=b.session)), BAD),
    ("delete unknown key", lambda b: ("DeleteObject", pb.TokenDeleteObjectRequest(
        session=b.session, key_id=b"\x99")), GONE),
    ("logout unknown handle", lambda b: ("Logout", pb.TokenLogoutRequest(session="tks_x")), GONE),
    ("register customer NUL", lambda b: ("RegisterToken", pb.RegisterTokenRequest(
        session=b.session, customer_id="C\x00", operator="kim")), BAD),
    ("register operator empty", lambda b: ("RegisterToken", pb.RegisterTokenRequest(
        session=b.session, customer_id="C-1")), BAD),
    ("register terminal 12 KB", lambda b: ("RegisterToken", pb.RegisterTokenRequest(
        session=b.session, customer_id="C-1", operator="kim", terminal=HUGE_TEXT)), BAD),
    ("deregister serial NUL", lambda b: ("DeregisterToken", pb.DeregisterTokenRequest(
        token_serial="a\x00", customer_id="C-1", operator="kim")), BAD),
    ("deregister customer 12 KB", lambda b: ("DeregisterToken", pb.DeregisterTokenRequest(
        token_serial=b.token.serial, customer_id=HUGE_TEXT, operator="kim")), BAD),
    ("exemption customer empty", lambda b: ("CheckTokenExemption",
        pb.CheckTokenExemptionRequest(token_serial=b.token.serial)), BAD),
    ("exemption serial newline", lambda b: ("CheckTokenExemption",
        pb.CheckTokenExemptionRequest(token_serial="a\nb", customer_id="C-1")), BAD),
]


@pytest.mark.parametrize("case,build,expected", MATRIX, ids=[m[0] for m in MATRIX])
def test_a_bad_request_gets_a_clear_error_and_changes_nothing(
        bench: Bench, case: str, build: Build, expected: grpc.StatusCode) -> None:
    before = bench.objects()
    method, request = build(bench)
    code, message, _ = code_of(lambda: getattr(bench.teller, method)(request, timeout=30))
    assert code == expected, (case, message)
    assert message and "internal error" not in message and "Traceback" not in message
    assert len(message) < 300  # the message never echoes a huge field
    assert bench.objects() == before  # nothing on the token changed; the login still works


@pytest.mark.parametrize("who", [("bank-a", "teller-2"), ("bank-b", "teller-1")],
                         ids=["another terminal", "another institution"])
def test_another_callers_handle_is_unknown_to_it_and_stays_the_owners(
        bench: Bench, who: tuple[str, str]) -> None:
    other = stub(bench.srv, institution=who[0], subject=who[1])
    sign = pb.TokenSignRequest(session=bench.session, key_id=bench.key_id, data=b"x")
    calls: list[Callable[[], Any]] = [
        lambda: other.Sign(sign),
        lambda: other.ListObjects(pb.TokenListObjectsRequest(session=bench.session)),
        lambda: other.DeleteObject(pb.TokenDeleteObjectRequest(
            session=bench.session, key_id=bench.key_id)),
        lambda: other.RegisterToken(pb.RegisterTokenRequest(
            session=bench.session, customer_id="C-1", operator="kim")),
        lambda: other.Logout(pb.TokenLogoutRequest(session=bench.session)),
    ]
    unknown = code_of(lambda: other.Sign(pb.TokenSignRequest(
        session="tks_" + "A" * 32, key_id=bench.key_id, data=b"x")))
    for call in calls:
        code, message, _ = code_of(call)
        assert code == grpc.StatusCode.NOT_FOUND, message
    assert code_of(calls[0])[1] == unknown[1]  # the same answer as for a handle never given
    assert bench.teller.Sign(sign).signature  # the owner's login is untouched


# --------------------------------------------------------------------- callers that give up


def _verify(public_der: bytes, signature: bytes, data: bytes) -> None:
    public = load_der_public_key(public_der)
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_callers_that_give_up_mid_signature_never_touch_another_callers_answers(
        server: Callable[..., Any]) -> None:
    """Deadlines expiring mid-Sign and SignStreams cancelled while the token signs, on one
    token, beside a second caller signing on another token: every answer the second caller
    gets is its own valid signature, and the first token signs normally afterwards."""
    env = process_env()
    srv = server(**FAST)
    quitter_token, steady_token = env.init_token(f"qt-{uuid.uuid4().hex[:6]}"), \
        env.init_token(f"st-{uuid.uuid4().hex[:6]}")
    quitter, steady = stub(srv, subject="teller-q"), stub(srv, subject="teller-s")
    # SoftHSM2 shows a new token only after a re-initialization, which waits while any token
    # is logged in (docs/token.md, Modules): both tokens are seen before either logs in.
    assert wait_for(lambda: {quitter_token.serial, steady_token.serial} <= {
        t.serial for t in quitter.ListTokens(pb.ListTokensRequest()).tokens}, timeout=30)
    q_session = quitter.Login(pb.TokenLoginRequest(token_serial=quitter_token.serial,
                                                   pin=quitter_token.pin)).session
    s_session = steady.Login(pb.TokenLoginRequest(token_serial=steady_token.serial,
                                                  pin=steady_token.pin)).session
    # RSA-2048 on SoftHSM2 takes milliseconds a signature: deadlines expire while it signs
    q_key = quitter.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=q_session, spec=pb.TOKEN_KEY_SPEC_RSA_2048, label="q"))
    s_key = steady.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=s_session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="s"))
    stop = threading.Event()
    answers: list[tuple[bytes, bytes]] = []
    failures: list[str] = []

    def sign_steadily() -> None:
        n = 0
        while not stop.is_set():
            data = f"steady-{n}".encode()
            n += 1
            try:
                sig = steady.Sign(pb.TokenSignRequest(session=s_session, key_id=s_key.key_id,
                                                      data=data), timeout=30)
                answers.append((data, sig.signature))
            except grpc.RpcError as exc:
                failures.append(f"{exc.code()}: {exc.details()}")

    worker = threading.Thread(target=sign_steadily)
    worker.start()
    expired = 0
    try:
        for i in range(40):  # deadlines of 1..4 ms: most expire while the token signs
            try:
                quitter.Sign(pb.TokenSignRequest(session=q_session, key_id=q_key.key_id,
                                                 data=b"q%d" % i), timeout=0.001 * (1 + i % 4))
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc.details()
                expired += 1
        for _ in range(5):  # streams cancelled after their first answer, with more queued
            requests = (pb.TokenSignRequest(session=q_session, key_id=q_key.key_id,
                                            data=b"s%d" % n) for n in range(200))
            stream = quitter.SignStream(requests, timeout=60)
            next(stream)
            stream.cancel()
        # The other caller's signatures go on after the cancellations (their queued work
        # dropped, nothing left holding the workers).
        after = len(answers)
        assert wait_for(lambda: len(answers) >= after + 5, timeout=30)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive(), "the signing worker did not stop"
    assert expired > 0 and not failures and len(answers) > 5
    for data, signature in answers:
        _verify(s_key.public_key_der, signature, data)
    for i in range(3):  # the token the quitter used works as before
        data = b"after-%d" % i
        sig = quitter.Sign(pb.TokenSignRequest(session=q_session, key_id=q_key.key_id,
                                               data=data), timeout=30)
        _verify(q_key.public_key_der, sig.signature, data)


# ------------------------------------------------------------------------------ no secrets


def test_pins_reach_no_answer_audit_record_metric_or_debug_log(
        server: Callable[..., Any], store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    user_pin, so_pin = "51" + uuid.uuid4().hex[:6], "73" + uuid.uuid4().hex[:6]
    wrong_pin, wrong_so = "90" + uuid.uuid4().hex[:6], "91" + uuid.uuid4().hex[:6]
    # The token before the daemon: softhsm2-util makes it in two steps, and a rescan between
    # them would hold it without a user PIN until the next (test_token_api.py, srv).
    token = process_env().init_token(f"sec-{uuid.uuid4().hex[:6]}", user_pin, so_pin)
    srv = server(store_url=store_url, **FAST)
    secrets = [user_pin, so_pin, wrong_pin, wrong_so, "654321xy"]
    seen: list[str] = []
    s = stub(srv)
    caplog.set_level(logging.DEBUG)
    for pin in (wrong_pin, user_pin):
        try:
            session = s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=pin)).session
        except grpc.RpcError as exc:
            seen += [exc.details() or "", str(details_of(exc))]
    key = s.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
        session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k"))
    s.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id,
                               digest=hashlib.sha256(b"x").digest()))
    s.Logout(pb.TokenLogoutRequest(session=session))
    for so in (wrong_so, so_pin):
        try:
            s.UnblockPin(pb.TokenUnblockPinRequest(
                token_serial=token.serial, so_pin=so, new_pin="654321xy", operator="kim",
                reason="forgotten"))
        except grpc.RpcError as exc:
            seen += [exc.details() or "", str(details_of(exc))]
    trail = srv.app.db.run(lambda tx: tx.all("SELECT target, detail FROM audit_log"),
                           write=False)
    seen += [caplog.text, repr(trail), generate_latest(metrics.REGISTRY).decode()]
    assert any("wrong PIN" in text for text in seen)  # the answers were looked at
    assert any("DEBUG" in r.levelname for r in caplog.records)  # the DEBUG log was on
    for secret in secrets:
        assert not any(secret in text for text in seen), secret
