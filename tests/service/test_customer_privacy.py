"""No oracle across institutions in the customer area: for every CustomerService and
BranchRegistrationService call, a token or smartcard registered only at another institution
(and a customer reference known only there) gets exactly the answer of one never registered
(status code, details, every response field but those new in every answer); nothing of the
other institution changes. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from authd.v1 import customer_pb2 as pb
from authd.v1 import customer_pb2_grpc as pb_grpc
from authd.v1 import otp_pb2, otp_pb2_grpc, policy_pb2_grpc, system_pb2, system_pb2_grpc
from authd.v1 import policy_pb2 as policy_pb
from authd.v1 import security_card_pb2 as card_pb
from authd.v1 import security_card_pb2_grpc as card_grpc
from tests.answers import answer_of

ELSEWHERE = "ELSEWHERE-0001"  # registered at bank-a only, as a token and as a smartcard
UNKNOWN = "UNKNOWN-00001"  # registered nowhere
CUSTOMER = "A-1"  # bank-a's customer
NOBODY = "N-9"  # nobody's customer
KINDS = {"token": pb.MEDIUM_KIND_HSM_TOKEN, "smartcard": pb.MEDIUM_KIND_SMARTCARD}
# Fields new in every answer (a registration's id and time).
FRESH = {"id", "registered_at"}


def without_fresh(answer: tuple[str, str, str]) -> tuple[str, str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in FRESH}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    code, details, fields = answer
    return code, details, strip(json.loads(fields)) if fields else ""


def registered_at_bank_a(srv: Any) -> Callable[[], Any]:
    """ELSEWHERE at bank-a for CUSTOMER, who also holds an OTP and a card there; returns what
    bank-a sees, to compare after bank-b's calls."""
    teller = srv.channel("bank-a", "branch", "teller")
    held = pb_grpc.BranchRegistrationServiceStub(teller)
    for kind in KINDS.values():
        held.RegisterMedium(pb.RegisterMediumRequest(
            kind=kind, serial=ELSEWHERE, customer_id=CUSTOMER, operator_id="kim"))
    otp_pb2_grpc.OtpServiceStub(teller).Enroll(otp_pb2.EnrollRequest(
        serial="OTP-PRIV-0001", customer_id=CUSTOMER, operator_id="kim",
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)))
    card_grpc.SecurityCardServiceStub(teller).IssueCard(card_pb.IssueSecurityCardRequest(
        customer_id=CUSTOMER, medium=card_pb.SECURITY_CARD_MEDIUM_BRAILLE))
    policy = policy_pb2_grpc.PolicyServiceStub(teller)
    policy.SetupCustomer(policy_pb.SetupCustomerRequest(
        customer_id=CUSTOMER, kind=policy_pb.CUSTOMER_KIND_PERSONAL, operator_id="kim"))
    customers = pb_grpc.CustomerServiceStub(srv.channel("bank-a", "backend", "ib"))
    return lambda: (customers.ListCustomerMedia(pb.ListCustomerMediaRequest(
        customer_id=CUSTOMER, include_ended=True)), policy.GetCustomer(
            policy_pb.PolicyCustomerRef(customer_id=CUSTOMER)).kind)


def probes(srv: Any) -> dict[str, Callable[[str], Any]]:
    """Every call of bank-b, as a function of the serial (or the customer) asked."""
    branch = srv.channel("bank-b", "branch", "teller")
    backend = srv.channel("bank-b", "backend", "ib")
    held = pb_grpc.BranchRegistrationServiceStub(branch)
    asking = pb_grpc.BranchRegistrationServiceStub(backend)
    customers = pb_grpc.CustomerServiceStub(backend)
    out: dict[str, Callable[[str], Any]] = {
        "ListCustomerMedia": lambda c: customers.ListCustomerMedia(
            pb.ListCustomerMediaRequest(customer_id=c, include_ended=True)),
        "ListCustomerMedia (branch)": lambda c: pb_grpc.CustomerServiceStub(
            branch).ListCustomerMedia(pb.ListCustomerMediaRequest(customer_id=c)),
        "ListRegistrations (serial)": lambda s: asking.ListRegistrations(
            pb.ListRegistrationsRequest(serial=s, include_ended=True)),
        "ListRegistrations (customer)": lambda c: held.ListRegistrations(
            pb.ListRegistrationsRequest(customer_id=c, include_ended=True)),
        "ChangeCustomerKind": lambda c: pb_grpc.CustomerServiceStub(
            branch).ChangeCustomerKind(pb.ChangeCustomerKindRequest(
                customer_id=c, kind=policy_pb.CUSTOMER_KIND_CORPORATE, operator_id="lee")),
    }
    for name, kind in KINDS.items():
        out |= {
            f"CheckExemption ({name})": lambda s, k=kind: asking.CheckExemption(
                pb.CheckExemptionRequest(kind=k, serial=s, customer_id=CUSTOMER)),
            f"DeregisterMedium ({name})": lambda s, k=kind: held.DeregisterMedium(
                pb.DeregisterMediumRequest(kind=k, serial=s, customer_id=CUSTOMER,
                                           operator_id="lee", reason="closed")),
        }
    for name, kind in KINDS.items():  # last: they register both serials at bank-b
        out[f"RegisterMedium ({name})"] = lambda s, k=kind: held.RegisterMedium(
            pb.RegisterMediumRequest(kind=k, serial=s, customer_id="B-1", operator_id="lee"))
    return out


BY_CUSTOMER = {"ListCustomerMedia", "ListCustomerMedia (branch)",
               "ListRegistrations (customer)", "ChangeCustomerKind"}


def test_every_call_is_probed():
    class NoServer:
        def channel(self, *args: Any) -> Any:
            import grpc

            return grpc.insecure_channel("127.0.0.1:9")

    probed = {name.split(" ")[0] for name in probes(NoServer())}
    methods = {m for service in ("CustomerService", "BranchRegistrationService")
               for m in pb.DESCRIPTOR.services_by_name[service].methods_by_name}
    assert probed == methods


def test_registered_elsewhere_looks_unknown(server, store_url):
    srv = server(store_url=store_url)
    bank_a_view = registered_at_bank_a(srv)
    before = bank_a_view()
    assert len(before[0].media) == 4
    for name, call in probes(srv).items():
        asked, unknown = (CUSTOMER, NOBODY) if name in BY_CUSTOMER else (ELSEWHERE, UNKNOWN)
        seen = without_fresh(answer_of(lambda c=call, x=asked: c(x), hide=[asked]))
        fresh = without_fresh(answer_of(lambda c=call, x=unknown: c(x), hide=[unknown]))
        assert seen == fresh, name
        assert "bank-a" not in str(seen), name
        if name.startswith("DeregisterMedium") or name == "ChangeCustomerKind":
            assert seen[0] == "NOT_FOUND", name
        else:
            assert seen[0] == "OK", (name, seen)
        if name.startswith("CheckExemption"):
            assert seen[2]["outcome"] == "EXEMPTION_OUTCOME_NOT_REGISTERED", name
    # Bank-a's registrations, and what it sees of its customer (its kind too), did not change.
    assert bank_a_view() == before
    # Bank-b's audit trail of both serials looks the same: its own registrations only.
    audit = system_pb2_grpc.SystemServiceStub(srv.channel("bank-b", "branch", "teller"))
    trails = []
    for serial in (ELSEWHERE, UNKNOWN):
        trail = []
        for kind in KINDS:
            entries = audit.ListAudit(system_pb2.ListAuditRequest(
                target=f"{kind}:{serial}")).entries
            trail += [(e.institution, e.action, e.outcome) for e in entries]
        trails.append(trail)
    assert trails[0] == trails[1] == [("bank-b", "token.register", "ok"),
                                      ("bank-b", "smartcard.register", "ok")]
