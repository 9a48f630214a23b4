"""Proto <-> domain conversion for the customer area."""

from __future__ import annotations

from authd.customer.models import (
    BranchRegistration,
    CustomerMedium,
    Exemption,
    ExemptionOutcome,
    MediumKind,
    MediumState,
)
from authd.enums import EnumMap
from authd.otp.convert import CHANNEL
from authd.v1 import customer_pb2 as pb
from devices.errors import BadRequest

KIND = EnumMap("kind", {
    MediumKind.OTP: pb.MEDIUM_KIND_OTP,
    MediumKind.SECURITY_CARD: pb.MEDIUM_KIND_SECURITY_CARD,
    MediumKind.BRAILLE_SECURITY_CARD: pb.MEDIUM_KIND_BRAILLE_SECURITY_CARD,
    MediumKind.HSM_TOKEN: pb.MEDIUM_KIND_HSM_TOKEN,
    MediumKind.SMARTCARD: pb.MEDIUM_KIND_SMARTCARD,
})
STATE = EnumMap("state", {
    MediumState.ACTIVE: pb.MEDIUM_STATE_ACTIVE,
    MediumState.LOCKED: pb.MEDIUM_STATE_LOCKED,
    MediumState.REPORTED_LOST: pb.MEDIUM_STATE_REPORTED_LOST,
    MediumState.RESTRICTED: pb.MEDIUM_STATE_RESTRICTED,
    MediumState.REVOKED: pb.MEDIUM_STATE_REVOKED,
    MediumState.REPLACED: pb.MEDIUM_STATE_REPLACED,
    MediumState.EXPIRED: pb.MEDIUM_STATE_EXPIRED,
    MediumState.DEREGISTERED: pb.MEDIUM_STATE_DEREGISTERED,
})
EXEMPTION = EnumMap("outcome", {
    ExemptionOutcome.EXEMPT: pb.EXEMPTION_OUTCOME_EXEMPT,
    ExemptionOutcome.NOT_REGISTERED: pb.EXEMPTION_OUTCOME_NOT_REGISTERED,
    ExemptionOutcome.OTHER_CUSTOMER: pb.EXEMPTION_OUTCOME_OTHER_CUSTOMER,
    ExemptionOutcome.MEDIUM_NOT_EXEMPT: pb.EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT,
})


def kind_from_pb(value: int, default: MediumKind | None = None) -> MediumKind | None:
    """A medium kind; UNSPECIFIED gives ``default``."""
    return KIND.from_pb(value, default)


def held_kind_from_pb(value: int, default: MediumKind | None = None) -> MediumKind:
    kind = kind_from_pb(value, default)
    if kind is None:
        raise BadRequest("kind (HSM_TOKEN or SMARTCARD) is required", field="kind")
    return kind


def medium_to_pb(m: CustomerMedium) -> pb.CustomerMedium:
    return pb.CustomerMedium(
        kind=KIND.to_pb(m.kind), serial=m.serial, state=STATE.to_pb(m.state),
        channel=CHANNEL.to_pb(m.channel), registered_at=m.registered_at,
        updated_at=m.updated_at, branch_registered=m.branch_registered,
        issued_here=m.issued_here, consecutive_failures=m.consecutive_failures,
        attempts_left=m.attempts_left, replaced_by=m.replaced_by, terminal=m.terminal,
        registration_id=m.registration_id)


def registration_to_pb(reg: BranchRegistration) -> pb.BranchRegistration:
    return pb.BranchRegistration(
        id=reg.id, kind=KIND.to_pb(reg.medium), serial=reg.serial,
        customer_id=reg.customer_id, institution=reg.institution, terminal=reg.terminal,
        operator_id=reg.operator, registered_at=reg.registered_at,
        deregistered_at=reg.deregistered_at or 0.0, active=reg.active,
        public_key=reg.public_key)


def exemption_to_pb(e: Exemption) -> pb.CheckExemptionResponse:
    return pb.CheckExemptionResponse(
        exempt=e.exempt, outcome=EXEMPTION.to_pb(e.outcome), reason=e.reason,
        registration=registration_to_pb(e.registration) if e.registration else None)


def registration_from_pb(m: pb.BranchRegistration) -> BranchRegistration:
    return BranchRegistration(
        id=m.id, medium=KIND.from_pb(m.kind), institution=m.institution, serial=m.serial,
        customer_id=m.customer_id, terminal=m.terminal, operator=m.operator_id,
        registered_at=m.registered_at, deregistered_at=m.deregistered_at or None,
        active=m.active, public_key=m.public_key)


def exemption_from_pb(m: pb.CheckExemptionResponse) -> Exemption:
    return Exemption(EXEMPTION.from_pb(m.outcome), m.reason,
                     registration_from_pb(m.registration) if m.HasField("registration")
                     else None)
