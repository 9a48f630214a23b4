"""Provisioning and identification of OTP HID devices at a branch: the device's side.

Provisioning is all or nothing across the branch and the center (``authd/hid_otp/center.py``):
the center reserves the enrollment and hands over the seed; this side programs the device
(OATH-HOTP seed in slot 1, an HMAC-SHA1 identification key in slot 2, both protected by the
access code the center derives for the device) and asks the center to confirm. Until the
confirmation is answered nothing is enrolled:

- programming fails: the slots written are deleted again and the reservation cancelled;
- the center refuses the confirmation (expired, cancelled, the OTP serial taken meanwhile),
  or the confirmation could not be sent at all: the slots are deleted again;
- the confirmation was sent and no answer came back: the center may have enrolled the device.
  The programming stays, and this node keeps asking the center (confirming is idempotent) until
  it answers: confirmed, the device is provisioned; refused, the programming is undone. If this
  node stops first, the reservation expires at the center, nothing is enrolled, and the device
  (still reprogrammable: the access code is derived from its serial) is provisioned again with
  ``overwrite``.

With the center role on the same node (the single process), the center's side is called in
process; on a branch-only node, over the link.
"""

from __future__ import annotations

import logging
import os
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass, field

from authd import validate
from authd.center.link import CenterUnreachable, OutcomeUnknown
from authd.context import Caller, current_caller, reset_caller, set_caller
from authd.hid_otp.attached import AttachedDevice, DeviceManager, OpenDevice
from authd.hid_otp.center import (
    IDENTIFIED,
    NO_IDENTIFICATION_KEY,
    NOT_PROVISIONED,
    HidCenter,
    ProvisioningRecord,
    Reservation,
    ReserveRequest,
)
from authd.hid_otp.copies import BranchCopies, CopiedRecord
from devices.errors import AlreadyPresent, AuthdError, BadRequest, Unreachable
from devices.hid_otp import Slot, hmac_sha1_config, hotp_config
from devices.hid_otp.errors import (
    CommandRejectedError,
    SlotAlreadyConfiguredError,
    SlotNotConfiguredError,
)
from drivers.errors import DriverError

log = logging.getLogger(__name__)

OTP_SLOT = Slot.ONE  # a short press types the code
IDENT_SLOT = Slot.TWO  # challenge-response only, no touch needed
IDENT_CHALLENGE_SIZE = 32


@dataclass(frozen=True)
class ProvisionRequest:
    device_serial: int
    digits: int = 6
    overwrite: bool = False
    identification: bool = True
    current_access_code: bytes | None = field(default=None, repr=False)
    operator: str = ""
    customer_id: str = ""  # the institution's customer reference (required)


@dataclass(frozen=True)
class Provisioned:
    device_serial: int
    otp_serial: str
    digits: int
    institution: str
    identification: bool
    firmware: str
    customer_id: str


@dataclass(frozen=True)
class Identification:
    outcome: str  # identified | mismatch | not-provisioned | no-identification-key
    device_serial: int
    device: ProvisioningRecord | None
    # From the branch copy: the center could not be asked (``center_error``: why), nothing was
    # challenged, and ``as_of`` is when the center gave the answer kept (0: the center's own).
    as_of: float = 0.0
    from_copy: bool = False
    center_error: str = ""


@dataclass(frozen=True)
class DeviceView:
    attached: AttachedDevice
    provisioned: ProvisioningRecord | None
    # When the center answered for the record: the moment of this listing when it answered
    # now; from the branch copy, when it last did; 0 when it never did (unknown).
    as_of: float = 0.0


@dataclass(frozen=True)
class Listing:
    devices: list[DeviceView]
    from_copy: bool = False  # the center could not be asked: records from the branch copy
    center_error: str = ""  # why it could not


@dataclass
class Unsettled:
    """A programmed device whose confirmation got no answer (kept in memory only)."""

    provisioning_id: str
    device_serial: int
    otp_serial: str
    slots: list[Slot]
    access_code: bytes = field(repr=False)
    operator: str
    caller: Caller
    since: float = field(default_factory=time.monotonic)


def firmware_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(v) for v in version)


class HidService:
    def __init__(self, devices: DeviceManager, center: HidCenter, *,
                 recovery_interval: float = 3.0, copies: BranchCopies | None = None) -> None:
        self.devices = devices
        self.center = center
        self.copies = copies  # a branch-only node's copy of the center's answers
        self.recovery_interval = recovery_interval
        self._unsettled: dict[int, Unsettled] = {}
        self._lock = threading.Lock()

    # --- listing ------------------------------------------------------------------------

    def list_devices(self) -> Listing:
        """The attached devices with their provisioning records; on a branch-only node whose
        center cannot be asked, the records of the branch copy, each with its age."""
        attached = self.devices.list()
        serials = [a.serial for a in attached if a.serial]
        try:
            known = self.center.records(serials)
        except Unreachable as exc:
            if self.copies is None:
                raise
            copied = self.copies.load(current_caller().institution, serials)
            expired = {s: c for s, c in copied.items() if c.expired}
            if expired:
                raise self._too_old(exc, expired) from None
            views = []
            for a in attached:
                c = copied.get(a.serial)
                views.append(DeviceView(a, c.record if c else None, c.checked_at if c else 0.0))
            return Listing(views, from_copy=True, center_error=str(exc))
        now = self._copy(serials, known) if self.copies is not None else time.time()
        return Listing([DeviceView(a, known.get(a.serial), now if a.serial else 0.0)
                        for a in attached])

    def _too_old(self, exc: Exception, expired: dict[int, CopiedRecord]) -> Unreachable:
        assert self.copies is not None
        last = max(c.checked_at for c in expired.values())
        return Unreachable(
            f"{exc}; this node's copy of the center's answers for device "
            f"{', '.join(str(s) for s in sorted(expired))} is older than [hid_otp] "
            f"branch_copy_max_age ({self.copies.max_age:g} s; answered "
            f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(last))}) and is not used: "
            "ask again when the center is reachable", reason="BRANCH_COPY_EXPIRED")

    def _copy(self, asked: list[int], found: dict[int, ProvisioningRecord]) -> float:
        """Keep the center's answer in the branch copy (a failure to write it is logged: the
        answer itself stands)."""
        assert self.copies is not None
        try:
            return self.copies.save(current_caller().institution, asked, found)
        except AuthdError as exc:
            log.warning("could not keep the center's HID records in the branch copy: %s", exc)
            return time.time()

    # --- provisioning -------------------------------------------------------------------

    def provision(self, request: ProvisionRequest) -> Provisioned:
        if request.digits not in (6, 8):
            raise BadRequest("digits must be 6 or 8")
        if request.device_serial <= 0:
            raise BadRequest("device_serial is required")
        validate.customer_ref(request.customer_id)
        with self.devices.open(request.device_serial) as device:
            # A new attempt on this device ends any earlier one this node was settling.
            self._forget(device.serial)
            known = self.center.records([device.serial]).get(device.serial)
            if known is not None:
                raise AlreadyPresent(f"device {device.serial} is already provisioned as "
                                     f"{known.otp_serial}")
            slots = [OTP_SLOT, IDENT_SLOT] if request.identification else [OTP_SLOT]
            status = device.session.status()
            for slot in slots:
                if status.is_configured(slot) and not request.overwrite:
                    raise SlotAlreadyConfiguredError(slot)
            firmware = firmware_text(status.version)
            pid = pysecrets.token_hex(16)
            try:
                reservation = self.center.reserve(ReserveRequest(
                    pid, device.serial, request.digits, request.identification, firmware,
                    request.operator, request.customer_id))
            except OutcomeUnknown:
                # A reservation may exist: end it (it would expire, or the next attempt
                # would supersede it); nothing was programmed.
                self._cancel(pid, request.operator, "reserve", "OutcomeUnknown", True)
                raise
            programmed = self._program(device, request, reservation)
            try:
                record = self.center.confirm(pid, request.operator)
            except OutcomeUnknown as exc:
                self._keep_unsettled(Unsettled(pid, device.serial, reservation.otp_serial,
                                               programmed, reservation.access_code,
                                               request.operator, current_caller()))
                raise OutcomeUnknown(
                    f"device {device.serial} is programmed, and the center did not answer its "
                    f"confirmation ({exc}). This node asks the center again every "
                    f"{self.recovery_interval:g} s until it answers, then keeps the device "
                    f"(enrolled as {reservation.otp_serial}) or undoes its programming; "
                    f"'authctl hid list' shows which", reason="PROVISIONING_UNSETTLED") from None
            except BaseException as exc:
                undone = self._undo(device, programmed, reservation.access_code)
                self._cancel(pid, request.operator, "confirm", type(exc).__name__, undone)
                raise
        if self.copies is not None:
            self._copy([device.serial], {device.serial: record})
        return Provisioned(device.serial, record.otp_serial, record.digits, record.institution,
                           record.identification, firmware, request.customer_id)

    def _program(self, device: OpenDevice, request: ProvisionRequest,
                 reservation: Reservation) -> list[Slot]:
        """Write the slots; on failure undo what was written, cancel and raise."""
        programmed: list[Slot] = []
        new_code = reservation.access_code
        current = request.current_access_code or new_code
        try:
            device.session.put_configuration(
                OTP_SLOT, hotp_config(reservation.seed, digits=request.digits,
                                      access_code=new_code),
                access_code=current)
            programmed.append(OTP_SLOT)
            if reservation.ident_key is not None:
                device.session.put_configuration(
                    IDENT_SLOT, hmac_sha1_config(reservation.ident_key, access_code=new_code),
                    access_code=current)
                programmed.append(IDENT_SLOT)
        except BaseException as exc:
            undone = self._undo(device, programmed, new_code)
            self._cancel(reservation.provisioning_id, request.operator, "program",
                         type(exc).__name__, undone)
            raise
        return programmed

    def _undo(self, device: OpenDevice, slots: list[Slot], code: bytes) -> bool:
        """Delete the configurations just written; False if the device could not be reached."""
        ok = True
        for slot in reversed(slots):
            try:
                device.session.delete_slot(slot, access_code=code)
            except (DriverError, AuthdError):
                log.warning("could not undo slot %d of device %d", slot, device.serial)
                ok = False
        return ok

    def _cancel(self, pid: str, operator: str, stage: str, error: str, restored: bool) -> None:
        """Tell the center the attempt ended (audited there); if the center cannot be told,
        its reservation expires."""
        try:
            self.center.cancel(pid, operator, stage=stage, error=error, restored=restored)
        except Exception as exc:
            log.warning("could not cancel provisioning %s at the center (%s); it expires there",
                        pid, type(exc).__name__)

    # --- what the link broke off ---------------------------------------------------------

    def _keep_unsettled(self, entry: Unsettled) -> None:
        with self._lock:
            self._unsettled[entry.device_serial] = entry
        log.warning("provisioning of device %d awaits the center's answer", entry.device_serial)

    def _forget(self, device_serial: int) -> None:
        with self._lock:
            self._unsettled.pop(device_serial, None)

    def unsettled(self) -> list[Unsettled]:
        with self._lock:
            return list(self._unsettled.values())

    def settle(self) -> int:
        """Ask the center about every provisioning whose confirmation got no answer: keep the
        device when it confirms, undo the programming when it refuses, try again later when
        it cannot be reached. Returns how many were settled."""
        done = 0
        for entry in self.unsettled():
            token = set_caller(entry.caller)
            try:
                done += self._settle(entry)
            finally:
                reset_caller(token)
        return done

    def _settle(self, entry: Unsettled) -> int:
        try:
            record = self.center.confirm(entry.provisioning_id, entry.operator)
        except AuthdError as exc:
            if _link_failure(exc):
                return 0
            refusal = exc
        else:
            if self.copies is not None:
                self._copy([entry.device_serial], {entry.device_serial: record})
            with self._lock:
                if self._unsettled.get(entry.device_serial) is entry:
                    del self._unsettled[entry.device_serial]
            log.info("provisioning of device %d confirmed by the center", entry.device_serial)
            return 1
        # Refused: nothing is enrolled. Undo the device unless a new attempt took it over.
        restored = False
        try:
            with self.devices.open(entry.device_serial) as device:
                with self._lock:
                    if self._unsettled.get(entry.device_serial) is not entry:
                        return 0
                    del self._unsettled[entry.device_serial]
                restored = self._undo(device, entry.slots, entry.access_code)
        except AuthdError:
            self._forget(entry.device_serial)  # not attached: it stays reprogrammable
        self._cancel(entry.provisioning_id, entry.operator, "confirm",
                     type(refusal).__name__, restored)
        log.warning("provisioning of device %d refused by the center (%s); programming %s",
                    entry.device_serial, refusal, "undone" if restored else "left on the device")
        return 1

    # --- identification -----------------------------------------------------------------

    def identify(self, device_serial: int) -> Identification:
        if device_serial <= 0:
            raise BadRequest("device_serial is required")
        with self.devices.open(device_serial) as device:
            try:
                found = self.center.records([device_serial])
            except Unreachable as exc:
                if self.copies is None:
                    raise
                return self._identify_from_copy(device_serial, exc)
            if self.copies is not None:
                self._copy([device_serial], found)
            record = found.get(device_serial)
            if record is None:
                return Identification(NOT_PROVISIONED, device_serial, None)
            if not record.identification:
                return Identification(NO_IDENTIFICATION_KEY, device_serial, record)
            challenge = os.urandom(IDENT_CHALLENGE_SIZE)
            try:
                answer = device.session.calculate_hmac_sha1(IDENT_SLOT, challenge)
            except (SlotNotConfiguredError, CommandRejectedError):
                answer = b""
        outcome, seen = self.center.check_identification(device_serial, challenge, answer)
        return Identification(outcome, device_serial, seen if outcome != NOT_PROVISIONED
                              else None)

    def _identify_from_copy(self, device_serial: int, exc: Unreachable) -> Identification:
        """The center cannot be asked: answer from the branch copy what needs no challenge.
        A device's identification key is held at the center only (encrypted, never at a
        branch), so only the center can check its answer to a challenge; and a record alone
        does not tell the device from another showing the same serial. So the copy answers
        only NOT_PROVISIONED (the center knew no record for this institution) and
        NO_IDENTIFICATION_KEY (provisioned without one: nothing to challenge), as of the
        center's answer; a device with an identification key is UNAVAILABLE."""
        assert self.copies is not None
        kept = self.copies.load(current_caller().institution, [device_serial])
        copied = kept.get(device_serial)
        if copied is None:
            raise exc
        if copied.expired:
            raise self._too_old(exc, kept) from None
        if copied.record is None:
            return Identification(NOT_PROVISIONED, device_serial, None, copied.checked_at,
                                  from_copy=True, center_error=str(exc))
        if not copied.record.identification:
            return Identification(NO_IDENTIFICATION_KEY, device_serial, copied.record,
                                  copied.checked_at, from_copy=True, center_error=str(exc))
        raise Unreachable(
            f"{exc}; device {device_serial} is identified by its identification key's answer "
            "to a fresh challenge, which only the center can check (the key is kept there, "
            "never at a branch): identify it when the center is reachable",
            reason="IDENTIFICATION_NEEDS_CENTER") from None


def _link_failure(exc: BaseException) -> bool:
    """Whether the center could not be asked (as opposed to answering)."""
    return isinstance(exc, OutcomeUnknown | CenterUnreachable)


__all__ = ["IDENTIFIED", "HidService", "ProvisionRequest"]
