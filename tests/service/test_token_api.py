"""authd.v1.TokenService over a real gRPC channel against SoftHSM2 tokens."""

from __future__ import annotations

import hashlib
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authd.errors import details_of
from authd.token.feature import TokenFeature
from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.certificate.ca import DemoCa
from simulators.token.softhsm import SoftHsmEnvironment, SoftHsmToken, process_env
from tests.conftest import joined

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}


@pytest.fixture
def env() -> SoftHsmEnvironment:
    return process_env()


@pytest.fixture
def token(env: SoftHsmEnvironment) -> SoftHsmToken:
    return env.init_token(f"api-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def srv(server: Callable[..., Any], token: SoftHsmToken) -> Any:
    # The token first: softhsm2-util initializes a token in two steps (the token, then its
    # user PIN), and a daemon that rescans the token directory between them, which a loaded
    # machine makes likely, holds a token without a user PIN until its next rescan, so the
    # test's Login failed with "log in first".
    return server(**FAST)


def stub(
    srv: Any, institution: str = "bank-a", role: str = "branch", subject: str = "teller-1"
) -> token_pb2_grpc.TokenServiceStub:
    return token_pb2_grpc.TokenServiceStub(srv.channel(institution, role, subject))


def login(s: token_pb2_grpc.TokenServiceStub, token: SoftHsmToken) -> str:
    return str(s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin)).session)


def objects(s: token_pb2_grpc.TokenServiceStub, session: str) -> list[tuple[bytes, bool]]:
    listed = s.ListObjects(pb.TokenListObjectsRequest(session=session))
    return sorted([(k.key_id, k.has_certificate) for k in listed.keys])


def test_list_tokens_hides_the_kek_token(srv: Any, token: SoftHsmToken) -> None:
    listed = stub(srv).ListTokens(pb.ListTokensRequest()).tokens
    by_serial = {t.serial: t for t in listed}
    assert by_serial[token.serial].label == token.label
    assert by_serial[token.serial].manufacturer == "SoftHSM project"
    assert "authd-kek" not in {t.label for t in listed}


def test_full_issuance_flow_and_exemption(
    srv: Any, token: SoftHsmToken, env: SoftHsmEnvironment
) -> None:
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(
            session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="hong"
        )
    )
    assert key.has_private_key and not key.extractable
    csr = s.CreateCsr(
        pb.TokenCreateCsrRequest(
            session=session, key_id=key.key_id, subject="CN=Hong Gildong,O=bank-a,C=KR"
        )
    )
    assert x509.load_pem_x509_csr(csr.csr_pem.encode()).is_signature_valid
    cert_der = DemoCa().issue(csr.csr_der)
    info = s.ImportCertificate(
        pb.TokenImportCertificateRequest(session=session, certificate=cert_der)
    )
    assert info.renewal == pb.TOKEN_RENEWAL_VALID and info.key_id == key.key_id
    assert info.renewable_until.endswith("23:59:59+09:00")
    challenge = b"login-challenge-" + uuid.uuid4().bytes
    sig = s.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=challenge))
    cert = x509.load_der_x509_certificate(cert_der)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(sig.signature, challenge, ec.ECDSA(hashes.SHA256()))
    assert s.Verify(
        pb.TokenVerifyRequest(
            token_serial=token.serial, key_id=key.key_id, data=challenge, signature=sig.signature
        )
    ).valid
    # the objects are on the token, as OpenSC's pkcs11-tool sees them
    out = env.pkcs11_tool("--token-label", token.label, "--login", "--pin", token.pin, "-O")
    assert "Certificate Object" in out.stdout and "hong" in out.stdout
    backend = stub(srv, role="backend", subject="ib-backend")
    check = pb.CheckTokenExemptionRequest(token_serial=token.serial, customer_id="C-1")
    assert not backend.CheckTokenExemption(check).exempt
    reg = s.RegisterToken(
        pb.RegisterTokenRequest(session=session, customer_id="C-1", operator="kim")
    )
    assert reg.active and reg.terminal == "teller-1" and reg.institution == "bank-a"
    result = backend.CheckTokenExemption(check)
    assert result.exempt and result.registration.id == reg.id
    other_bank = stub(srv, institution="bank-b", role="backend")
    assert not other_bank.CheckTokenExemption(check).exempt
    with pytest.raises(grpc.RpcError) as err:
        s.RegisterToken(pb.RegisterTokenRequest(session=session, customer_id="C-1", operator="kim"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    s.DeregisterToken(
        pb.DeregisterTokenRequest(
            token_serial=token.serial, customer_id="C-1", operator="kim", reason="customer request"
        )
    )
    assert not backend.CheckTokenExemption(check).exempt
    s.Logout(pb.TokenLogoutRequest(session=session))


def test_wrong_pin_reports_attempts_left_then_locks(srv: Any, token: SoftHsmToken) -> None:
    s = stub(srv)
    for left in (2, 1):
        with pytest.raises(grpc.RpcError) as err:
            s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="000000"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"wrong PIN, {left} attempt(s) left" in err.value.details()
        assert "000000" not in err.value.details()
        details = details_of(err.value)
        assert details.reason == "WRONG_PIN" and details.metadata == {"attempts_left": str(left)}
    with pytest.raises(grpc.RpcError) as err:
        s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="000000"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "locked" in err.value.details()
    # locked: even the right PIN is not tried
    with pytest.raises(grpc.RpcError) as err:
        s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # a branch unblocks it with the SO PIN and a new user PIN
    with pytest.raises(grpc.RpcError) as err:
        s.UnblockPin(
            pb.TokenUnblockPinRequest(
                token_serial=token.serial,
                so_pin="87654321",
                new_pin="654321",
                operator="kim",
                reason="lock",
            )
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    s.UnblockPin(
        pb.TokenUnblockPinRequest(
            token_serial=token.serial,
            so_pin=token.so_pin,
            new_pin="654321",
            operator="kim",
            reason="customer locked",
        )
    )
    session = s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="654321")).session
    assert session


def test_absent_token_is_unavailable(
    srv: Any, token: SoftHsmToken, env: SoftHsmEnvironment
) -> None:
    s = stub(srv)
    with pytest.raises(grpc.RpcError) as err:
        s.Login(pb.TokenLoginRequest(token_serial="00000000deadbeef", pin="123456"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not present" in err.value.details()
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k")
    )
    env.unplug(token)
    try:
        with pytest.raises(grpc.RpcError) as err:
            for _ in range(50):  # the watcher notices within a poll interval
                s.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x"))
                threading.Event().wait(0.05)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "not present" in err.value.details()
        for _ in range(3):  # and so it stays, whether the login is still known or not
            with pytest.raises(grpc.RpcError) as err:
                s.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x"))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            s.ListObjects(pb.TokenListObjectsRequest(token_serial=token.serial))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        env.plug(token)


def test_token_removed_during_sign_stream_is_unavailable(
    srv: Any, token: SoftHsmToken, env: SoftHsmEnvironment
) -> None:
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k")
    )
    request = pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"transfer")
    answered: list[pb.TokenSignResponse] = []
    turns: queue.Queue[bool] = queue.Queue()

    def requests() -> Any:  # one request per answer; the token goes away after the third
        for i in range(50):
            if i == 3:
                env.unplug(token)
            yield request
            if not turns.get(timeout=30):
                return

    try:
        with pytest.raises(grpc.RpcError) as err:
            for answer in s.SignStream(requests(), timeout=60):
                answered.append(answer)
                turns.put(True)
        turns.put(False)
        assert len(answered) == 3
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "not present" in err.value.details()
    finally:
        env.plug(token)


def test_bad_requests_get_clear_errors_and_change_nothing(srv: Any, token: SoftHsmToken) -> None:
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k")
    )
    before = objects(s, session)
    cases = [
        (
            pb.TokenSignRequest(session=session, key_id=b"\x99", data=b"x"),
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            pb.TokenSignRequest(session=session, key_id=key.key_id, data=bytes((1 << 20) + 1)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.TokenSignRequest(session=session, key_id=key.key_id, digest=b"short"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.TokenSignRequest(
                session=session,
                key_id=key.key_id,
                data=b"x",
                algorithm=pb.TOKEN_SIGN_RSA_PSS_SHA256,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x", token_hashes=True),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),  # SoftHSM2 has no CKM_ECDSA_SHA256
        (
            pb.TokenSignRequest(session="nope", key_id=key.key_id, data=b"x"),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for request, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            s.Sign(request)
        assert err.value.code() == code, (request, err.value.details())
        assert err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        s.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(session=session, label="x"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        s.GenerateKeyPair(
            pb.TokenGenerateKeyPairRequest(
                session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="dup", key_id=key.key_id
            )
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as err:
        s.ImportCertificate(pb.TokenImportCertificateRequest(session=session, certificate=b"junk"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        s.DeleteObject(pb.TokenDeleteObjectRequest(session=session, key_id=b"\x99"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert objects(s, session) == before


def test_session_is_bound_to_the_caller_and_roles_are_checked(
    srv: Any, token: SoftHsmToken
) -> None:
    teller = stub(srv)
    session = login(teller, token)
    other = stub(srv, subject="teller-2")
    with pytest.raises(grpc.RpcError) as err:
        other.Sign(pb.TokenSignRequest(session=session, key_id=b"\x01", data=b"x"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:  # the token is in use by teller-1
        other.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    backend = stub(srv, role="backend")
    with pytest.raises(grpc.RpcError) as err:
        backend.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    teller.Logout(pb.TokenLogoutRequest(session=session))
    with pytest.raises(grpc.RpcError) as err:
        teller.Sign(pb.TokenSignRequest(session=session, key_id=b"\x01", data=b"x"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    login(other, token)


def test_idle_session_expires(server: Callable[..., Any], token: SoftHsmToken) -> None:
    srv = server(token={"session_idle_seconds": 0.3, "poll_interval": 0.1})
    s = stub(srv)
    session = login(s, token)
    threading.Event().wait(0.6)
    with pytest.raises(grpc.RpcError) as err:
        s.ListObjects(pb.TokenListObjectsRequest(session=session))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    login(s, token)  # the token was logged out, so a new login works


def test_watch_gives_current_state_then_unplug_and_plug(
    srv: Any, token: SoftHsmToken, env: SoftHsmEnvironment
) -> None:
    s = stub(srv)
    events: queue.Queue[pb.TokenEvent] = queue.Queue()
    call = s.WatchTokens(pb.WatchTokensRequest())

    def read() -> None:
        try:
            for ev in call:
                events.put(ev)
        except grpc.RpcError:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(*kinds: int) -> pb.TokenEvent:
        while True:
            ev = events.get(timeout=10)
            if ev.kind in kinds and ev.token.serial == token.serial:
                return ev

    # present at subscription, or inserted just after if the token is newer than the last poll
    first = wait_for(pb.TokenEvent.PRESENT, pb.TokenEvent.INSERTED)
    assert first.token.label == token.label
    env.unplug(token)
    try:
        wait_for(pb.TokenEvent.REMOVED)
    finally:
        env.plug(token)
    wait_for(pb.TokenEvent.INSERTED)
    call.cancel()
    joined(reader, 5)


def test_rsa_pss_and_digest_signing(srv: Any, token: SoftHsmToken) -> None:
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(
            session=session, spec=pb.TOKEN_KEY_SPEC_RSA_2048, label="rsa"
        )
    )
    digest = hashlib.sha256(b"transfer 1,000,000 KRW").digest()
    for alg in (pb.TOKEN_SIGN_RSA_PKCS1V15_SHA256, pb.TOKEN_SIGN_RSA_PSS_SHA256):
        sig = s.Sign(
            pb.TokenSignRequest(session=session, key_id=key.key_id, digest=digest, algorithm=alg)
        )
        assert sig.algorithm == alg
        assert s.Verify(
            pb.TokenVerifyRequest(
                session=session,
                key_id=key.key_id,
                algorithm=alg,
                data=b"transfer 1,000,000 KRW",
                signature=sig.signature,
            )
        ).valid
    public = serialization.load_der_public_key(key.public_key_der)
    assert public.key_size == 2048  # type: ignore[union-attr]


def test_sign_stream_answers_in_order_and_stops_at_a_bad_request(
    srv: Any, token: SoftHsmToken
) -> None:
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k")
    )
    messages = [f"order {i}".encode() for i in range(150)]  # several batches, both lanes
    requests = [pb.TokenSignRequest(session=session, key_id=key.key_id, data=m) for m in messages]
    answers = list(s.SignStream(iter(requests)))
    assert len(answers) == len(messages)
    for message, answer in zip(messages, answers, strict=True):
        assert s.Verify(
            pb.TokenVerifyRequest(
                session=session, key_id=key.key_id, data=message, signature=answer.signature
            )
        ).valid
    bad = [
        *requests[:3],
        pb.TokenSignRequest(session=session, key_id=b"\x99", data=b"x"),
        *requests[:3],
    ]
    got: list[pb.TokenSignResponse] = []
    with pytest.raises(grpc.RpcError) as err:
        for answer in s.SignStream(iter(bad)):
            got.append(answer)
    assert len(got) == 3 and err.value.code() == grpc.StatusCode.NOT_FOUND
    unreadable = [*requests[:40], pb.TokenSignRequest(session=session, key_id=key.key_id)]
    got = []
    with pytest.raises(grpc.RpcError) as err:
        for answer in s.SignStream(iter([*unreadable, *requests[:40]])):
            got.append(answer)
    assert len(got) == 40 and err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_registration_and_pin_limit_on_both_stores(
    server: Callable[..., Any], store_url: str, token: SoftHsmToken
) -> None:
    srv = server(store_url=store_url, **FAST)
    s = stub(srv)
    with pytest.raises(grpc.RpcError) as err:
        s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="000000"))
    assert "2 attempt(s) left" in err.value.details()
    session = login(s, token)  # a success resets the count
    reg = s.RegisterToken(
        pb.RegisterTokenRequest(session=session, customer_id="C-7", operator="lee", terminal="T-9")
    )
    backend = stub(srv, role="backend")
    check = pb.CheckTokenExemptionRequest(token_serial=token.serial, customer_id="C-7")
    assert backend.CheckTokenExemption(check).registration.terminal == "T-9"
    with pytest.raises(grpc.RpcError) as err:
        s.DeregisterToken(
            pb.DeregisterTokenRequest(
                token_serial=token.serial,
                customer_id="C-8",
                operator="lee",
                reason="wrong customer",
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    ended = s.DeregisterToken(
        pb.DeregisterTokenRequest(
            token_serial=token.serial, customer_id="C-7", operator="lee", reason="lost"
        )
    ).registration
    assert ended.id == reg.id and not ended.active and ended.deregistered_at > 0
    assert not backend.CheckTokenExemption(check).exempt
    s.Logout(pb.TokenLogoutRequest(session=session))
    for left in (2, 1):
        with pytest.raises(grpc.RpcError) as err:
            s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin="000000"))
        assert f"{left} attempt(s) left" in err.value.details()


@pytest.mark.parametrize("inline_sign_us", [0.0, 1e9])
def test_sign_on_the_loop_or_a_worker_gives_the_same_signatures(
    server: Callable[..., Any], token: SoftHsmToken, inline_sign_us: float
) -> None:
    srv = server(token={**FAST["token"], "inline_sign_us": inline_sign_us})
    s = stub(srv)
    session = login(s, token)
    key = s.GenerateKeyPair(
        pb.TokenGenerateKeyPairRequest(session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="k")
    )
    service = srv._bg.app.require(TokenFeature).service
    assert not service.signs_inline(session, None)  # not measured yet: a worker thread
    for i in range(5):
        data = f"transfer {i}".encode()
        sig = s.Sign(pb.TokenSignRequest(session=session, key_id=key.key_id, data=data))
        assert s.Verify(
            pb.TokenVerifyRequest(
                session=session, key_id=key.key_id, data=data, signature=sig.signature
            )
        ).valid
    assert service.signs_inline(session, b"x") is (inline_sign_us > 0)
    assert not service.signs_inline(session, bytes(8192))  # much data to hash: a worker
    assert not service.signs_inline("tks_unknown", None)
    with pytest.raises(grpc.RpcError) as err:  # the handle stays bound to its caller
        stub(srv, subject="teller-2").Sign(
            pb.TokenSignRequest(session=session, key_id=key.key_id, data=b"x")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_logins_for_unknown_serials_reinitialize_the_module_at_most_once_an_interval(
    server: Callable[..., Any], token: SoftHsmToken
) -> None:
    """A caller asking for serials nobody has, in a loop: each is not present, and SoftHSM2's
    module is re-initialized once for all of them (rescan_interval), not once per call."""
    srv = server(token={"poll_interval": 3600, "rescan_interval": 3600})
    (module,) = srv._bg.app.require(TokenFeature).service.modules.modules
    before = module.reinitializations
    s = stub(srv)
    for i in range(30):
        with pytest.raises(grpc.RpcError) as err:
            s.Login(pb.TokenLoginRequest(token_serial=f"NOBODY-{i}", pin=token.pin))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # not present
    assert module.reinitializations - before <= 1
    s.Logout(pb.TokenLogoutRequest(session=login(s, token)))  # a token known all along
