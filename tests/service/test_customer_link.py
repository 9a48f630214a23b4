"""Token registrations at a branch-only node are recorded at the center over the link, and a
backend asks the center (BranchRegistrationService.CheckExemption); another institution's
branch node and backend learn nothing of them; with the center down, registering answers
UNAVAILABLE and signing on the token goes on."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import customer_pb2 as C
from authd.v1 import customer_pb2_grpc, system_pb2, system_pb2_grpc, token_pb2_grpc
from authd.v1 import token_pb2 as T
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.conftest import wait_for
from tests.service.test_center_link import branch_node, center_node, rpc_error
from tests.split import Pki, terminal_name

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}


@pytest.fixture
def pki_dir(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"link-{uuid.uuid4().hex[:6]}")


def login(stub: token_pb2_grpc.TokenServiceStub, token: SoftHsmToken) -> str:
    assert wait_for(lambda: any(t.serial == token.serial for t in stub.ListTokens(
        T.ListTokensRequest(), timeout=30).tokens), timeout=15)
    return str(stub.Login(T.TokenLoginRequest(token_serial=token.serial, pin=token.pin),
                          timeout=30).session)


def exemption(pki: Pki, center: Any, bank: str, serial: str,
              customer: str) -> C.CheckExemptionResponse:
    stub = customer_pb2_grpc.BranchRegistrationServiceStub(
        pki.channel(center.address, f"{bank}-backend"))
    return stub.CheckExemption(C.CheckExemptionRequest(
        kind=C.MEDIUM_KIND_HSM_TOKEN, serial=serial, customer_id=customer), timeout=30)


def test_a_token_registered_at_a_branch_node_is_asked_of_the_center(
        server: Any, pki_dir: Pki, tmp_path: Path, token: SoftHsmToken) -> None:
    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    a = branch_node(server, pki_dir, "bank-a", center, **FAST)
    b = branch_node(server, pki_dir, "bank-b", center, **FAST)
    teller = token_pb2_grpc.TokenServiceStub(a.channel("bank-a", "branch", "teller-07"))
    before = exemption(pki_dir, center, "bank-a", token.serial, "A-1")
    assert before.outcome == C.EXEMPTION_OUTCOME_NOT_REGISTERED

    reg = teller.RegisterToken(T.RegisterTokenRequest(
        session=login(teller, token), customer_id="A-1", operator="kim"), timeout=30)
    assert (reg.customer_id, reg.terminal, reg.operator) == ("A-1", "teller-07", "kim")

    # The backend asks the center: the branch's registration is there.
    after = exemption(pki_dir, center, "bank-a", token.serial, "A-1")
    assert after.exempt and after.outcome == C.EXEMPTION_OUTCOME_EXEMPT
    assert (after.registration.terminal, after.registration.operator_id) == ("teller-07", "kim")
    # The branch's own question goes to the center too.
    asked = teller.CheckTokenExemption(T.CheckTokenExemptionRequest(
        token_serial=token.serial, customer_id="A-1"), timeout=30)
    assert asked.exempt
    # The center's audit names the branch node as the caller and the teller as operator.
    ops = system_pb2_grpc.SystemServiceStub(pki_dir.channel(center.address, "ops"))
    entries = [e for e in ops.ListAudit(system_pb2.ListAuditRequest(
        target=f"token:{token.serial}"), timeout=30).entries if e.action == "token.register"]
    assert [(e.institution, e.subject, json.loads(e.detail_json)["operator"])
            for e in entries] == [("bank-a", terminal_name("bank-a"), "kim")]
    # Registering it again at bank A: the center's refusal, as it is.
    again = rpc_error(lambda: teller.RegisterToken(T.RegisterTokenRequest(
        session=login(teller, token), customer_id="A-1", operator="kim"), timeout=30))
    assert again.code() == grpc.StatusCode.ALREADY_EXISTS

    # Bank B, at its branch node and its backend, sees what it sees of an unknown token.
    unknown = "0000000000000000"
    b_teller = token_pb2_grpc.TokenServiceStub(b.channel("bank-b", "branch", "teller-11"))
    for serial in (token.serial, unknown):
        seen = exemption(pki_dir, center, "bank-b", serial, "A-1")
        assert (seen.exempt, seen.outcome, seen.HasField("registration")) == (
            False, C.EXEMPTION_OUTCOME_NOT_REGISTERED, False)
    answers = [b_teller.CheckTokenExemption(T.CheckTokenExemptionRequest(
        token_serial=s, customer_id="A-1"), timeout=30) for s in (token.serial, unknown)]
    assert answers[0] == answers[1] and not answers[0].exempt
    b_list = customer_pb2_grpc.BranchRegistrationServiceStub(
        b.channel("bank-b", "branch", "teller-11"))
    listed = [b_list.ListRegistrations(C.ListRegistrationsRequest(serial=s), timeout=30)
              for s in (token.serial, unknown)]
    assert listed[0] == listed[1] == C.ListRegistrationsResponse()
    denied = [rpc_error(lambda s=s: b_teller.DeregisterToken(T.DeregisterTokenRequest(
        token_serial=s, customer_id="A-1", operator="lee", reason="x"), timeout=30))
        for s in (token.serial, unknown)]
    assert [e.code() for e in denied] == [grpc.StatusCode.NOT_FOUND] * 2
    assert (denied[0].details().replace(token.serial, "S")
            == denied[1].details().replace(unknown, "S"))
    # Bank A's registration is what it was.
    assert exemption(pki_dir, center, "bank-a", token.serial, "A-1").registration == \
        after.registration


def test_with_the_center_down_registering_answers_unavailable_and_signing_goes_on(
        server: Any, pki_dir: Pki, tmp_path: Path, token: SoftHsmToken) -> None:
    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    a = branch_node(server, pki_dir, "bank-a", center, **FAST)
    teller = token_pb2_grpc.TokenServiceStub(a.channel("bank-a", "branch", "teller-07"))
    session = login(teller, token)
    teller.GenerateKeyPair(T.TokenGenerateKeyPairRequest(
        session=session, spec=T.TOKEN_KEY_SPEC_EC_P256, label="login", key_id=b"\x01"),
        timeout=30)
    center.stop()

    err = rpc_error(lambda: teller.RegisterToken(T.RegisterTokenRequest(
        session=session, customer_id="A-1", operator="kim"), timeout=30))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "center is unreachable" in str(err.details())
    assert details_of(err).reason == "CENTER_UNREACHABLE"
    signed = teller.Sign(T.TokenSignRequest(session=session, key_id=b"\x01", data=b"login"),
                         timeout=30)
    assert signed.signature
    health = a.app.health
    assert wait_for(lambda: not health.serving("authd.v1.BranchRegistrationService"),
                    timeout=10)
    assert health.serving("authd.v1.TokenService")
