"""BranchRegistrationService: tokens and smartcards registered at branches, recorded at the
center and asked by backends; through a real gRPC channel, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import grpc
import pytest

from authd.errors import details_of
from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from authd.v1 import system_pb2, system_pb2_grpc

TOKEN = pb.MEDIUM_KIND_HSM_TOKEN
SMARTCARD = pb.MEDIUM_KIND_SMARTCARD
TOKEN_SERIAL = "a1b2c3d4e5f60718"
CARD_SERIAL = "000000000000000000000000DEADBEEF"


class Bank:
    def __init__(self, srv: Any, institution: str) -> None:
        self.name = institution
        self.branch = pb_grpc.BranchRegistrationServiceStub(
            srv.channel(institution, "branch", "teller-1"))
        self.backend = pb_grpc.BranchRegistrationServiceStub(
            srv.channel(institution, "backend", "ib"))
        self.audit = system_pb2_grpc.SystemServiceStub(
            srv.channel(institution, "branch", "teller-1"))

    def register(self, serial: str = TOKEN_SERIAL, customer: str = "C-1", kind: int = TOKEN,
                 **fields: Any) -> pb.BranchRegistration:
        fields.setdefault("operator_id", "kim")
        return self.branch.RegisterMedium(pb.RegisterMediumRequest(
            kind=kind, serial=serial, customer_id=customer, **fields))

    def exemption(self, serial: str = TOKEN_SERIAL, customer: str = "C-1",
                  kind: int = TOKEN) -> pb.CheckExemptionResponse:
        return self.backend.CheckExemption(pb.CheckExemptionRequest(
            kind=kind, serial=serial, customer_id=customer))


@pytest.fixture
def banks(server: Any, store_url: str) -> tuple[Any, Bank, Bank]:
    srv = server(store_url=store_url)
    return srv, Bank(srv, "bank-a"), Bank(srv, "bank-b")


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def test_register_check_list_deregister(banks: tuple[Any, Bank, Bank]) -> None:
    _srv, a, b = banks
    assert a.exemption().outcome == pb.EXEMPTION_OUTCOME_NOT_REGISTERED
    reg = a.register(terminal="T-9")
    assert (reg.kind, reg.serial, reg.customer_id, reg.institution, reg.terminal,
            reg.operator_id, reg.active) == (TOKEN, TOKEN_SERIAL, "C-1", "bank-a", "T-9", "kim",
                                             True)
    # A backend of bank-a asks the center: exempt (EFT art. 14(1)6), with the registration.
    seen = a.exemption()
    assert seen.exempt and seen.outcome == pb.EXEMPTION_OUTCOME_EXEMPT
    assert seen.registration == reg and "14(1)6" in seen.reason
    other = a.exemption(customer="C-2")
    assert (other.exempt, other.outcome) == (False, pb.EXEMPTION_OUTCOME_OTHER_CUSTOMER)
    assert not other.HasField("registration")
    # Bank-b knows nothing of it; it may register the same token for its own customer.
    assert b.exemption().outcome == pb.EXEMPTION_OUTCOME_NOT_REGISTERED
    at_b = b.register(customer="B-7")
    assert at_b.institution == "bank-b" and at_b.id != reg.id
    # One active registration per token and institution.
    err = rpc_error(lambda: a.register(customer="C-1"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "for this customer" in (err.details() or "")
    err = rpc_error(lambda: a.register(customer="C-3"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "another customer" in (err.details() or "") and "bank-b" not in (err.details() or "")

    # A smartcard registered at a branch is recorded, but EFT art. 14(1)6 exempts tokens only.
    card = a.register(CARD_SERIAL, kind=SMARTCARD)
    assert card.kind == SMARTCARD
    card_check = a.exemption(CARD_SERIAL, kind=SMARTCARD)
    assert (card_check.exempt, card_check.outcome) == (
        False, pb.EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT)
    assert card_check.registration == card
    # The same serial as a token is another medium: not registered.
    assert a.exemption(CARD_SERIAL).outcome == pb.EXEMPTION_OUTCOME_NOT_REGISTERED

    listed = a.backend.ListRegistrations(pb.ListRegistrationsRequest(customer_id="C-1"))
    assert [r.id for r in listed.registrations] == [reg.id, card.id]
    by_serial = a.branch.ListRegistrations(pb.ListRegistrationsRequest(serial=TOKEN_SERIAL))
    assert [r.id for r in by_serial.registrations] == [reg.id]
    only_cards = a.backend.ListRegistrations(pb.ListRegistrationsRequest(
        kind=SMARTCARD, customer_id="C-1"))
    assert [r.id for r in only_cards.registrations] == [card.id]

    ended = a.branch.DeregisterMedium(pb.DeregisterMediumRequest(
        kind=TOKEN, serial=TOKEN_SERIAL, customer_id="C-1", operator_id="kim",
        reason="customer request"))
    assert not ended.active and ended.deregistered_at >= ended.registered_at
    assert a.exemption().outcome == pb.EXEMPTION_OUTCOME_NOT_REGISTERED
    assert b.exemption(customer="B-7").exempt  # bank-b's registration stands
    err = rpc_error(lambda: a.branch.DeregisterMedium(pb.DeregisterMediumRequest(
        kind=TOKEN, serial=TOKEN_SERIAL, customer_id="C-1", operator_id="kim")))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    active = a.backend.ListRegistrations(pb.ListRegistrationsRequest(customer_id="C-1"))
    assert [r.id for r in active.registrations] == [card.id]
    history = a.backend.ListRegistrations(pb.ListRegistrationsRequest(
        customer_id="C-1", include_ended=True))
    assert [(r.id, r.active) for r in history.registrations] == [
        (reg.id, False), (card.id, True)]
    # Registered again later: a new registration.
    again = a.register()
    assert again.id not in (reg.id, at_b.id) and a.exemption().registration.id == again.id

    trail = a.audit.ListAudit(system_pb2.ListAuditRequest(target=f"token:{TOKEN_SERIAL}"))
    assert [(e.action, e.institution) for e in reversed(trail.entries)] == [
        ("token.register", "bank-a"), ("token.deregister", "bank-a"),
        ("token.register", "bank-a")]
    # The records name the customer (searchable by the institution); the detail does not.
    assert all(e.customer == "C-1" and "customer_id" not in json.loads(e.detail_json)
               for e in trail.entries)
    found = a.audit.SearchAudit(system_pb2.SearchAuditRequest(
        filter=system_pb2.AuditFilter(customer="C-1")))
    assert {e.action for e in found.entries} == {"token.register", "token.deregister",
                                                 "smartcard.register"}


def test_bad_requests_and_roles_change_nothing(banks: tuple[Any, Bank, Bank]) -> None:
    srv, a, _b = banks
    cases = {
        "no kind": dict(kind=pb.MEDIUM_KIND_UNSPECIFIED),
        "an OTP is not registered this way": dict(kind=pb.MEDIUM_KIND_OTP),
        "unknown kind": dict(kind=99),
        "no serial": dict(serial=""),
        "serial with a newline": dict(serial="ab\ncd"),
        "serial with spaces around": dict(serial=" abcd "),
        "long serial": dict(serial="x" * 65),
        "no customer": dict(customer=""),
        "customer that is a name": dict(customer="홍길동"),
        "operator with NUL": dict(operator_id="k\x00"),
        "terminal with a newline": dict(terminal="T\n1"),
    }
    for name, fields in cases.items():
        request: dict[str, Any] = {"serial": TOKEN_SERIAL, "customer": "C-1", "kind": TOKEN,
                                   **fields}
        err = rpc_error(lambda request=request: a.register(**request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "\n" not in (err.details() or "") and "\x00" not in (err.details() or ""), name
    err = rpc_error(lambda: a.register(customer=""))
    assert details_of(err).field == "customer_id"
    err = rpc_error(lambda: a.branch.RegisterMedium(pb.RegisterMediumRequest(
        kind=TOKEN, serial=TOKEN_SERIAL, customer_id="C-1")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # no operator
    err = rpc_error(lambda: a.backend.RegisterMedium(pb.RegisterMediumRequest(
        kind=TOKEN, serial=TOKEN_SERIAL, customer_id="C-1", operator_id="kim")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = rpc_error(lambda: a.backend.ListRegistrations(pb.ListRegistrationsRequest()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(lambda: a.exemption(customer=""))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    ops = pb_grpc.BranchRegistrationServiceStub(srv.channel("ops", "admin", "ops-1"))
    err = rpc_error(lambda: ops.CheckExemption(pb.CheckExemptionRequest(
        kind=TOKEN, serial=TOKEN_SERIAL, customer_id="C-1")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert srv.app.db.run(lambda tx: tx.one("SELECT COUNT(*) FROM token_registrations"),
                          write=False) == (0,)


def test_racing_registrations_of_one_token_record_one(banks: tuple[Any, Bank, Bank]) -> None:
    """Tellers at several terminals register the same token at once: one registration, the
    others ALREADY_EXISTS (on PostgreSQL the unique index decides; SQLite serializes)."""
    srv, _a, _b = banks
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def register(n: int) -> None:
        stub = pb_grpc.BranchRegistrationServiceStub(srv.channel("bank-a", "branch", f"T-{n}"))
        start.wait()
        try:
            stub.RegisterMedium(pb.RegisterMediumRequest(
                kind=TOKEN, serial=TOKEN_SERIAL, customer_id=f"C-{n}", operator_id="kim"),
                timeout=60)
            outcomes.append("OK")
        except grpc.RpcError as exc:
            outcomes.append(exc.code().name)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ALREADY_EXISTS"] * 5 + ["OK"]
    rows = srv.app.db.run(lambda tx: tx.all(
        "SELECT customer_id FROM token_registrations WHERE active = 1"), write=False)
    assert len(rows) == 1
