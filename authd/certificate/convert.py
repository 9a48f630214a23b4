"""Proto <-> domain for the certificate service."""

from __future__ import annotations

import datetime as dt

from authd import validate
from authd.certificate import media
from authd.certificate.repository import CertificateRow, RequestRow
from authd.enums import EnumMap
from authd.policy.convert import device_from_pb
from authd.v1 import certificate_pb2 as pb
from authd.v1 import policy_pb2
from devices.certificate.additional import Proof, ProofKind
from devices.certificate.lifecycle import (
    CertificateStatus,
    EndOfUse,
    IssuanceStep,
    RequestState,
    RevocationReason,
    StorageLocation,
    effective,
)
from devices.certificate.reliance import Reliance, Verdict
from devices.certificate.types import CertificateType
from devices.certificate.validity import RenewalState, renewal_state, renewal_window
from devices.errors import BadRequest
from devices.policy.terminals import DeviceInfo, normalise

STEP = EnumMap("step", {IssuanceStep.IDENTITY: pb.ISSUANCE_STEP_IDENTITY,
                        IssuanceStep.SECURITY_MEANS: pb.ISSUANCE_STEP_SECURITY_MEANS,
                        IssuanceStep.ACCOUNT: pb.ISSUANCE_STEP_ACCOUNT},
               what="identity, security_means, account")
STATE = EnumMap("state", {RequestState.OPEN: pb.ISSUANCE_STATE_OPEN,
                          RequestState.ISSUED: pb.ISSUANCE_STATE_ISSUED,
                          RequestState.CANCELLED: pb.ISSUANCE_STATE_CANCELLED,
                          RequestState.EXPIRED: pb.ISSUANCE_STATE_EXPIRED,
                          RequestState.REFUSED: pb.ISSUANCE_STATE_REFUSED})
STORAGE = EnumMap("storage", {StorageLocation.DISK: pb.STORAGE_LOCATION_DISK,
                              StorageLocation.REMOVABLE_DISK: pb.STORAGE_LOCATION_REMOVABLE_DISK,
                              StorageLocation.TOKEN: pb.STORAGE_LOCATION_TOKEN,
                              StorageLocation.SMARTCARD: pb.STORAGE_LOCATION_SMARTCARD},
                  what="disk, removable_disk, token, smartcard")
STATUS = EnumMap("status", {CertificateStatus.ACTIVE: pb.CERTIFICATE_STATUS_ACTIVE,
                            CertificateStatus.SUSPENDED: pb.CERTIFICATE_STATUS_SUSPENDED,
                            CertificateStatus.REVOKED: pb.CERTIFICATE_STATUS_REVOKED,
                            CertificateStatus.EXPIRED: pb.CERTIFICATE_STATUS_EXPIRED})
RENEWAL = EnumMap("renewal", {RenewalState.NOT_YET_VALID: pb.RENEWAL_STATE_NOT_YET_VALID,
                              RenewalState.VALID: pb.RENEWAL_STATE_VALID,
                              RenewalState.RENEWABLE: pb.RENEWAL_STATE_RENEWABLE,
                              RenewalState.EXPIRED: pb.RENEWAL_STATE_EXPIRED})
REASON = EnumMap("reason", {
    RevocationReason.SUBSCRIBER_REQUEST: pb.REVOCATION_REASON_SUBSCRIBER_REQUEST,
    RevocationReason.HOLDER_DEAD: pb.REVOCATION_REASON_HOLDER_DEAD,
    RevocationReason.KEY_LOST: pb.REVOCATION_REASON_KEY_LOST,
    RevocationReason.KEY_LEAKED: pb.REVOCATION_REASON_KEY_LEAKED,
    RevocationReason.FRAUDULENT: pb.REVOCATION_REASON_FRAUDULENT,
    RevocationReason.SUBSCRIBER_DATA_CHANGED: pb.REVOCATION_REASON_SUBSCRIBER_DATA_CHANGED,
}, what=", ".join(r.value for r in RevocationReason))
END = EnumMap("cause", {EndOfUse.EXPIRED: pb.END_OF_USE_EXPIRED,
                        EndOfUse.HOLDER_DEAD: pb.END_OF_USE_HOLDER_DEAD,
                        EndOfUse.KEY_LOST: pb.END_OF_USE_KEY_LOST,
                        EndOfUse.KEY_LEAKED: pb.END_OF_USE_KEY_LEAKED,
                        EndOfUse.FRAUDULENT: pb.END_OF_USE_FRAUDULENT},
              what=", ".join(e.value for e in EndOfUse))
VERDICT = EnumMap("verdict", {
    Verdict.VALID: pb.VERDICT_VALID, Verdict.NOT_YET_VALID: pb.VERDICT_NOT_YET_VALID,
    Verdict.EXPIRED: pb.VERDICT_EXPIRED, Verdict.REVOKED: pb.VERDICT_REVOKED,
    Verdict.SUSPENDED: pb.VERDICT_SUSPENDED, Verdict.UNTRUSTED: pb.VERDICT_UNTRUSTED,
    Verdict.UNKNOWN: pb.VERDICT_UNKNOWN, Verdict.STATUS_UNAVAILABLE: pb.VERDICT_STATUS_UNAVAILABLE})
PROOF = EnumMap("proof", {ProofKind.BRANCH_NUMBER: pb.AdditionalProof.BRANCH_NUMBER,
                          ProofKind.SMS: pb.AdditionalProof.SMS,
                          ProofKind.ARS: pb.AdditionalProof.ARS},
                what="branch_number, sms, ars")


def step(value: int) -> IssuanceStep:
    return STEP.from_pb(value)


def reason(value: int) -> RevocationReason:
    return REASON.from_pb(value)


def end_of_use(value: int) -> EndOfUse:
    return END.from_pb(value)


def storage(value: int) -> StorageLocation:
    return STORAGE.from_pb(value)


def proof(message: pb.AdditionalProof, present: bool) -> Proof | None:
    if not present:
        return None
    kind = PROOF.from_pb(message.kind)
    if not message.value:
        raise BadRequest("the additional authentication proof is empty", field="proof")
    return Proof(kind, message.value)


def device_info(message: policy_pb2.DeviceInfo) -> DeviceInfo:
    """The applicant's terminal, checked and normalised as the policy feature does."""
    return normalise(device_from_pb(message), "device_info.")


def target(request: pb.CompleteIssuanceRequest | pb.RenewCertificateRequest) -> media.Target:
    which = request.WhichOneof("storage")
    if which == "token":
        if not request.token.session:
            raise BadRequest("token storage needs the token's login session", field="token")
        return media.TokenTarget(request.token.session)
    if which == "smartcard":
        if not request.smartcard.reader or not request.smartcard.pin:
            raise BadRequest("smartcard storage needs the reader and the card PIN",
                             field="smartcard")
        pin = validate.pin(request.smartcard.pin, "smartcard.pin",
                           length=validate.PIV_PIN_LENGTH)
        return media.CardTarget(request.smartcard.reader, pin)
    if which == "disk":
        if not request.disk.disk or not request.disk.password:
            raise BadRequest("disk storage needs the disk and the certificate password",
                             field="disk")
        return media.DiskTarget(request.disk.disk, request.disk.password, request.disk.removable)
    raise BadRequest("give the storage location: token, smartcard or disk", field="storage")


def request(row: RequestRow, now: dt.datetime, kind: CertificateType | None) -> pb.IssuanceRequest:
    q = row.request
    return pb.IssuanceRequest(
        id=q.id, customer_ref=q.customer_ref, certificate_type=q.certificate_type,
        reissue=q.kind.value == "reissue", state=STATE.to_pb(q.state_at(now)), step=int(q.step),  # type: ignore[arg-type]
        created_at=q.created_at.timestamp(), expires_at=q.expires_at.timestamp(),
        storage=STORAGE.to_pb(q.storage) if q.storage else pb.STORAGE_LOCATION_UNSPECIFIED,
        certificate_serial=q.certificate_serial, reason=q.reason,
        fee_krw=kind.fee_krw if kind else 0, replaces_serial=q.replaces_serial)


def certificate(row: CertificateRow, now: dt.datetime, window_days: int) -> pb.Certificate:
    since, until = renewal_window(row.not_after, window_days)
    status = effective(row.status, row.not_after, now)
    renewal = renewal_state(row.not_before, row.not_after, now, window_days)
    return pb.Certificate(
        serial=row.serial, issuer=row.issuer, subject=row.subject, customer_ref=row.customer_ref,
        certificate_type=row.certificate_type, origin=row.origin,
        storage=STORAGE.to_pb(row.storage), location=row.location,
        not_before=row.not_before.timestamp(), not_after=row.not_after.timestamp(),
        status=STATUS.to_pb(status), status_reason=row.status_reason,
        renewal=RENEWAL.to_pb(renewal), renewable_from=since.isoformat(),
        renewable_until=until.isoformat(), fee_krw=row.fee_krw,
        refund_krw=-1 if row.refund_krw is None else row.refund_krw,
        replaced_by=row.replaced_by, der=row.der, request_id=row.request_id,
        issued_at=row.issued_at.timestamp())


def check(reliance: Reliance) -> pb.CertificateCheck:
    out = pb.CertificateCheck(verdict=VERDICT.to_pb(reliance.verdict), allowed=reliance.allowed,
                              message=reliance.message, failed_open=reliance.failed_open)
    status = reliance.status
    if status is not None:
        out.source = status.source
        out.this_update = status.this_update.timestamp()
        out.next_update = status.next_update.timestamp()
        if status.revoked_at is not None:
            out.revoked_at = status.revoked_at.timestamp()
        if status.reason is not None:
            out.revocation_reason = status.reason.value
    return out
