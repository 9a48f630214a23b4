"""The center's branch registrations reached over a branch node's link
(``authd.v1.BranchRegistrationService``): what ``TokenService.RegisterToken`` and
``SmartcardService.RegisterCard`` call on a branch-only node. The center records the
registration with the branch node as the caller and the teller as the operator; its refusals
come back as the errors the in-process logic raises (same message, reason and field)."""

from __future__ import annotations

from authd.center.link import CenterLink, Rpc
from authd.context import Caller
from authd.customer import convert
from authd.customer.models import BranchRegistration, Exemption, MediumKind
from authd.customer.registrations import check_medium
from authd.v1 import customer_pb2 as pb

SERVICE = "BranchRegistrationService"
REGISTER = Rpc.of(pb.DESCRIPTOR, SERVICE, "RegisterMedium")
DEREGISTER = Rpc.of(pb.DESCRIPTOR, SERVICE, "DeregisterMedium")
LIST = Rpc.of(pb.DESCRIPTOR, SERVICE, "ListRegistrations")
CHECK = Rpc.of(pb.DESCRIPTOR, SERVICE, "CheckExemption")


class RemoteRegistrations:
    """:class:`authd.customer.registrations.BranchRegistrations` at the center, through the
    link. Each call first checks that the terminal may have this node act for it (a teller of
    the node's own institution). Changes are not resent to another center node when an answer
    is lost (UNAVAILABLE, CENTER_OUTCOME_UNKNOWN: list the registrations before trying again);
    reads are."""

    def __init__(self, link: CenterLink) -> None:
        self.link = link

    def register(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                 terminal: str, operator: str,
                 public_key: bytes = b"") -> BranchRegistration:
        self.link.acting_for(caller)
        m = self.link.call_blocking(REGISTER, pb.RegisterMediumRequest(
            kind=convert.KIND.to_pb(check_medium(medium)), serial=serial,
            customer_id=customer_id, operator_id=operator, terminal=terminal or caller.subject,
            public_key=public_key), operator=operator)
        return convert.registration_from_pb(m)

    def deregister(self, caller: Caller, medium: MediumKind, serial: str, customer_id: str, *,
                   operator: str, reason: str) -> BranchRegistration:
        self.link.acting_for(caller)
        m = self.link.call_blocking(DEREGISTER, pb.DeregisterMediumRequest(
            kind=convert.KIND.to_pb(check_medium(medium)), serial=serial,
            customer_id=customer_id, operator_id=operator, reason=reason), operator=operator)
        return convert.registration_from_pb(m)

    def registrations(self, caller: Caller, medium: MediumKind | None, *, serial: str = "",
                      customer_id: str = "",
                      include_ended: bool = False) -> list[BranchRegistration]:
        self.link.acting_for(caller)
        kind = (convert.KIND.to_pb(check_medium(medium)) if medium is not None
                else pb.MEDIUM_KIND_UNSPECIFIED)
        m = self.link.call_blocking(LIST, pb.ListRegistrationsRequest(
            kind=kind, serial=serial, customer_id=customer_id, include_ended=include_ended),
            operator=caller.operator or caller.subject, retry=True)
        return [convert.registration_from_pb(r) for r in m.registrations]

    def exemption(self, caller: Caller, medium: MediumKind, serial: str,
                  customer_id: str) -> Exemption:
        self.link.acting_for(caller)
        m = self.link.call_blocking(CHECK, pb.CheckExemptionRequest(
            kind=convert.KIND.to_pb(check_medium(medium)), serial=serial,
            customer_id=customer_id), operator=caller.operator or caller.subject, retry=True)
        return convert.exemption_from_pb(m)
