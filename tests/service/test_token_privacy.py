"""No oracle across institutions on TokenService: at bank-b's terminal, a token registered at
bank-a gets exactly the answers of a token registered nowhere, on every call (status code,
details, every response field but those that differ between any two tokens: serial, label,
slot, keys, signatures, sessions, times); bank-a's registration stays. SQLite and PostgreSQL
(the registrations are at the center, on the store)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from authd.v1 import token_pb2 as pb
from authd.v1 import token_pb2_grpc
from simulators.certificate.ca import DemoCa
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.answers import answer_of

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}
# What differs between any two tokens or any two calls.
FRESH = {"session", "expires_at", "slot_id", "public_key_der", "csr_der", "csr_pem",
         "signature", "der", "serial_hex", "not_before", "not_after", "renewable_from",
         "renewable_until", "id", "registered_at"}
SUBJECT = "CN=Hong Gildong,O=bank-b,C=KR"


def without_fresh(answer: tuple[str, str, str]) -> tuple[str, str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in FRESH}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    code, details, fields = answer
    return code, details, strip(json.loads(fields)) if fields else ""


class Terminal:
    """Bank-b's teller terminal and backend, calling with one token or the other."""

    def __init__(self, srv: Any, institution: str) -> None:
        self.teller = token_pb2_grpc.TokenServiceStub(
            srv.channel(institution, "branch", "teller"))
        self.backend = token_pb2_grpc.TokenServiceStub(srv.channel(institution, "backend", "ib"))

    def login(self, token: SoftHsmToken) -> str:
        return str(self.teller.Login(pb.TokenLoginRequest(token_serial=token.serial,
                                                          pin=token.pin)).session)

    def logout(self, session: str) -> None:
        self.teller.Logout(pb.TokenLogoutRequest(session=session))

    def with_key(self, token: SoftHsmToken, key_id: bytes,
                 work: Callable[[str], Any]) -> Any:
        """``work(session)`` in a login with a fresh EC key ``key_id`` on the token."""
        session = self.login(token)
        try:
            self.teller.GenerateKeyPair(pb.TokenGenerateKeyPairRequest(
                session=session, spec=pb.TOKEN_KEY_SPEC_EC_P256, label="probe", key_id=key_id))
            return work(session)
        finally:
            self.logout(session)


def probes(t: Terminal) -> dict[str, Callable[[SoftHsmToken], Any]]:
    """Every TokenService call of bank-b, as a function of the token."""
    s = t.teller

    def listed(token: SoftHsmToken) -> Any:
        return [x for x in s.ListTokens(pb.ListTokensRequest()).tokens
                if x.serial == token.serial]

    def watched(token: SoftHsmToken) -> Any:
        events = s.WatchTokens(pb.WatchTokensRequest())
        try:
            return next(e for e in events if e.token.serial == token.serial)
        finally:
            events.cancel()

    def login(token: SoftHsmToken) -> Any:
        response = s.Login(pb.TokenLoginRequest(token_serial=token.serial, pin=token.pin))
        t.logout(response.session)
        return response

    def logout(token: SoftHsmToken) -> Any:
        return s.Logout(pb.TokenLogoutRequest(session=t.login(token)))

    def csr(session: str, key_id: bytes) -> bytes:
        return bytes(s.CreateCsr(pb.TokenCreateCsrRequest(session=session, key_id=key_id,
                                                          subject=SUBJECT)).csr_der)

    def imported(session: str, key_id: bytes) -> Any:
        return s.ImportCertificate(pb.TokenImportCertificateRequest(
            session=session, certificate=DemoCa().issue(csr(session, key_id))))

    def sign(session: str, key_id: bytes) -> Any:
        return s.Sign(pb.TokenSignRequest(session=session, key_id=key_id, data=b"login"))

    def verify(session: str, key_id: bytes) -> Any:
        signature = sign(session, key_id).signature
        return s.Verify(pb.TokenVerifyRequest(session=session, key_id=key_id, data=b"login",
                                              signature=signature))

    def keyed(key_id: bytes, work: Callable[[str, bytes], Any]) -> Callable[[SoftHsmToken], Any]:
        return lambda token: t.with_key(token, key_id, lambda session: work(session, key_id))

    return {
        "ListTokens": listed,
        "WatchTokens": watched,
        "Login": login,
        "Logout": logout,
        "UnblockPin": lambda token: s.UnblockPin(pb.TokenUnblockPinRequest(
            token_serial=token.serial, so_pin=token.so_pin, new_pin=token.pin, operator="lee",
            reason="locked")),
        "GenerateKeyPair": lambda token: t.with_key(token, b"\x01", lambda session: s.ListObjects(
            pb.TokenListObjectsRequest(session=session))),
        "CreateCsr": keyed(b"\x02", lambda session, key_id: s.CreateCsr(
            pb.TokenCreateCsrRequest(session=session, key_id=key_id, subject=SUBJECT))),
        "ImportCertificate": keyed(b"\x03", imported),
        "ListObjects": lambda token: s.ListObjects(pb.TokenListObjectsRequest(
            token_serial=token.serial)),
        "Sign": keyed(b"\x04", sign),
        "SignStream": keyed(b"\x05", lambda session, key_id: list(s.SignStream(iter(
            [pb.TokenSignRequest(session=session, key_id=key_id, data=b"x")] * 3)))),
        "Verify": keyed(b"\x06", verify),
        "DeleteObject": keyed(b"\x07", lambda session, key_id: s.DeleteObject(
            pb.TokenDeleteObjectRequest(session=session, key_id=key_id))),
        "CheckTokenExemption": lambda token: t.backend.CheckTokenExemption(
            pb.CheckTokenExemptionRequest(token_serial=token.serial, customer_id="A-1")),
        "CheckTokenExemption (branch)": lambda token: s.CheckTokenExemption(
            pb.CheckTokenExemptionRequest(token_serial=token.serial, customer_id="A-1")),
        "DeregisterToken": lambda token: s.DeregisterToken(pb.DeregisterTokenRequest(
            token_serial=token.serial, customer_id="A-1", operator="lee", reason="closed")),
        # last: it registers both tokens at bank-b
        "RegisterToken": lambda token: t.with_key(token, b"\x08", lambda session: s.RegisterToken(
            pb.RegisterTokenRequest(session=session, customer_id="B-1", operator="lee"))),
    }


def test_every_call_is_probed():
    methods = set(pb.DESCRIPTOR.services_by_name["TokenService"].methods_by_name)
    probed = {name.split(" ")[0] for name in probes(Terminal(_NoServer(), "bank-b"))}
    assert probed == methods


class _NoServer:
    def channel(self, *args: Any) -> Any:
        import grpc

        return grpc.insecure_channel("127.0.0.1:9")


@pytest.fixture
def tokens() -> tuple[SoftHsmToken, SoftHsmToken]:
    env = process_env()
    tag = uuid.uuid4().hex[:6]
    return env.init_token(f"elsewhere-{tag}"), env.init_token(f"nowhere-{tag}")


def test_a_token_registered_elsewhere_looks_unregistered(
        server: Any, store_url: str, tokens: tuple[SoftHsmToken, SoftHsmToken]) -> None:
    srv = server(store_url=store_url, **FAST)
    elsewhere, nowhere = tokens
    a = Terminal(srv, "bank-a")
    session = a.login(elsewhere)
    registration = a.teller.RegisterToken(pb.RegisterTokenRequest(
        session=session, customer_id="A-1", operator="kim"))
    a.logout(session)
    check = pb.CheckTokenExemptionRequest(token_serial=elsewhere.serial, customer_id="A-1")
    assert a.backend.CheckTokenExemption(check).exempt

    b = Terminal(srv, "bank-b")
    for name, call in probes(b).items():
        seen = without_fresh(answer_of(lambda c=call: c(elsewhere),
                                       hide=[elsewhere.serial, elsewhere.label]))
        fresh = without_fresh(answer_of(lambda c=call: c(nowhere),
                                        hide=[nowhere.serial, nowhere.label]))
        assert seen == fresh, name
        assert "bank-a" not in str(seen) and "A-1" not in seen[1], name
        assert seen[0] == ("NOT_FOUND" if name == "DeregisterToken" else "OK"), (name, seen)
    # Bank-a's registration is what it was.
    still = a.backend.CheckTokenExemption(check)
    assert still.exempt and still.registration == registration
