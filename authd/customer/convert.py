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
from authd.v1 import customer_pb2 as pb
from authd.v1 import otp_pb2
from devices.errors import BadRequest

KIND_TO_PB = {
    MediumKind.OTP: pb.MEDIUM_KIND_OTP,
    MediumKind.SECURITY_CARD: pb.MEDIUM_KIND_SECURITY_CARD,
    MediumKind.BRAILLE_SECURITY_CARD: pb.MEDIUM_KIND_BRAILLE_SECURITY_CARD,
    MediumKind.HSM_TOKEN: pb.MEDIUM_KIND_HSM_TOKEN,
    MediumKind.SMARTCARD: pb.MEDIUM_KIND_SMARTCARD,
}
KIND_FROM_PB: dict[int, MediumKind] = {int(v): k for k, v in KIND_TO_PB.items()}
STATE_TO_PB = {
    MediumState.ACTIVE: pb.MEDIUM_STATE_ACTIVE,
    MediumState.LOCKED: pb.MEDIUM_STATE_LOCKED,
    MediumState.REPORTED_LOST: pb.MEDIUM_STATE_REPORTED_LOST,
    MediumState.RESTRICTED: pb.MEDIUM_STATE_RESTRICTED,
    MediumState.REVOKED: pb.MEDIUM_STATE_REVOKED,
    MediumState.REPLACED: pb.MEDIUM_STATE_REPLACED,
    MediumState.EXPIRED: pb.MEDIUM_STATE_EXPIRED,
    MediumState.DEREGISTERED: pb.MEDIUM_STATE_DEREGISTERED,
}
CHANNEL_TO_PB = {"branch": otp_pb2.REGISTRATION_CHANNEL_BRANCH,
                 "online": otp_pb2.REGISTRATION_CHANNEL_ONLINE}
EXEMPTION_TO_PB = {
    ExemptionOutcome.EXEMPT: pb.EXEMPTION_OUTCOME_EXEMPT,
    ExemptionOutcome.NOT_REGISTERED: pb.EXEMPTION_OUTCOME_NOT_REGISTERED,
    ExemptionOutcome.OTHER_CUSTOMER: pb.EXEMPTION_OUTCOME_OTHER_CUSTOMER,
    ExemptionOutcome.MEDIUM_NOT_EXEMPT: pb.EXEMPTION_OUTCOME_MEDIUM_NOT_EXEMPT,
}


def kind_from_pb(value: int, default: MediumKind | None = None) -> MediumKind | None:
    """A medium kind; UNSPECIFIED gives ``default``."""
    if value == pb.MEDIUM_KIND_UNSPECIFIED:
        return default
    try:
        return KIND_FROM_PB[value]
    except KeyError:
        raise BadRequest(f"unknown medium kind {value}", field="kind") from None


def held_kind_from_pb(value: int, default: MediumKind | None = None) -> MediumKind:
    kind = kind_from_pb(value, default)
    if kind is None:
        raise BadRequest("kind (HSM_TOKEN or SMARTCARD) is required", field="kind")
    return kind


def medium_to_pb(m: CustomerMedium) -> pb.CustomerMedium:
    return pb.CustomerMedium(
        kind=KIND_TO_PB[m.kind], serial=m.serial, state=STATE_TO_PB[m.state],
        channel=CHANNEL_TO_PB[m.channel], registered_at=m.registered_at,
        updated_at=m.updated_at, branch_registered=m.branch_registered,
        issued_here=m.issued_here, consecutive_failures=m.consecutive_failures,
        attempts_left=m.attempts_left, replaced_by=m.replaced_by, terminal=m.terminal,
        registration_id=m.registration_id)


def registration_to_pb(reg: BranchRegistration) -> pb.BranchRegistration:
    return pb.BranchRegistration(
        id=reg.id, kind=KIND_TO_PB[reg.medium], serial=reg.serial,
        customer_id=reg.customer_id, institution=reg.institution, terminal=reg.terminal,
        operator_id=reg.operator, registered_at=reg.registered_at,
        deregistered_at=reg.deregistered_at or 0.0, active=reg.active)


def exemption_to_pb(e: Exemption) -> pb.CheckExemptionResponse:
    return pb.CheckExemptionResponse(
        exempt=e.exempt, outcome=EXEMPTION_TO_PB[e.outcome], reason=e.reason,
        registration=registration_to_pb(e.registration) if e.registration else None)
