"""The center's side of provisioning, reached over a branch node's link
(``authd.v1.HidOtpCenterService``). The reservation's secrets arrive once, in memory, over the
link's mTLS; nothing of them is written or logged here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from authd.center.link import CenterLink, Rpc
from authd.context import current_caller
from authd.hid_otp.center import ProvisioningRecord, Reservation, ReserveRequest
from authd.hid_otp.convert import IDENTIFY_OUTCOME
from authd.v1 import hid_otp_pb2 as pb
from devices.errors import Unreachable

SERVICE = "HidOtpCenterService"
RESERVE = Rpc.of(pb.DESCRIPTOR, SERVICE, "ReserveProvisioning")
CONFIRM = Rpc.of(pb.DESCRIPTOR, SERVICE, "ConfirmProvisioning")
CANCEL = Rpc.of(pb.DESCRIPTOR, SERVICE, "CancelProvisioning")
RECORDS = Rpc.of(pb.DESCRIPTOR, SERVICE, "GetProvisioningRecords")
CHECK = Rpc.of(pb.DESCRIPTOR, SERVICE, "CheckIdentification")


def record_of(m: pb.HidProvisioningRecord) -> ProvisioningRecord:
    return ProvisioningRecord(m.device_serial, m.otp_serial, m.institution, m.firmware,
                              m.digits, m.identification, m.provisioned_at)


class RemoteHidCenter:
    """:class:`authd.hid_otp.center.HidCenter` at the center, through the link. Each call
    checks first that the terminal may have this node act for it."""

    def __init__(self, link: CenterLink) -> None:
        self.link = link

    def _operator(self, operator: str = "") -> str:
        caller = self.link.acting_for(current_caller())
        return operator or caller.subject

    def reserve(self, request: ReserveRequest) -> Reservation:
        operator = self._operator(request.operator)
        # Not retried on another node: a reply lost on the way leaves a reservation that the
        # next attempt supersedes (or that expires).
        m = self.link.call_blocking(RESERVE, pb.ReserveHidProvisioningRequest(
            provisioning_id=request.provisioning_id, device_serial=request.device_serial,
            digits=request.digits, identification=request.identification,
            firmware=request.firmware, operator_id=request.operator,
            customer_id=request.customer_id), operator=operator)
        return Reservation(m.provisioning_id, m.otp_serial, m.seed,
                           m.identification_key or None, m.access_code, m.expires_at,
                           m.ttl_seconds)

    def confirm(self, provisioning_id: str, operator: str) -> ProvisioningRecord:
        # Idempotent at the center: sent to the next node when one breaks off.
        m = self.link.call_blocking(CONFIRM, pb.ConfirmHidProvisioningRequest(
            provisioning_id=provisioning_id), operator=self._operator(operator), retry=True)
        return record_of(m)

    def cancel(self, provisioning_id: str, operator: str, *, stage: str, error: str,
               restored: bool) -> None:
        self.link.call_blocking(CANCEL, pb.CancelHidProvisioningRequest(
            provisioning_id=provisioning_id, stage=stage, error=error,
            device_restored=restored), operator=self._operator(operator), retry=True)

    def records(self, device_serials: Sequence[int]) -> dict[int, ProvisioningRecord]:
        operator = self._operator()
        if not device_serials:
            return {}
        m = self.link.call_blocking(RECORDS, pb.GetHidProvisioningRecordsRequest(
            device_serials=list(device_serials)), operator=operator, retry=True)
        return {r.device_serial: record_of(r) for r in m.records}

    def check_identification(self, device_serial: int, challenge: bytes,
                             response: bytes) -> tuple[str, ProvisioningRecord | None]:
        m = self.link.call_blocking(CHECK, pb.CheckHidIdentificationRequest(
            device_serial=device_serial, challenge=challenge, response=response),
            operator=self._operator())
        record = record_of(m.record) if m.HasField("record") else None
        return IDENTIFY_OUTCOME.from_pb(m.outcome), record


class NoCenter:
    """A branch-only node without ``[center] urls``: provisioning cannot happen here."""

    @staticmethod
    def _refuse() -> NoReturn:
        raise Unreachable("this branch node has no center to provision devices with: set "
                          "[center] urls", reason="NO_CENTER")

    def reserve(self, request: ReserveRequest) -> Reservation:
        self._refuse()

    def confirm(self, provisioning_id: str, operator: str) -> ProvisioningRecord:
        self._refuse()

    def cancel(self, provisioning_id: str, operator: str, *, stage: str, error: str,
               restored: bool) -> None:
        self._refuse()

    def records(self, device_serials: Sequence[int]) -> dict[int, ProvisioningRecord]:
        self._refuse()

    def check_identification(self, device_serial: int, challenge: bytes,
                             response: bytes) -> tuple[str, ProvisioningRecord | None]:
        self._refuse()
