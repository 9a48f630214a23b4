"""Provisioning and identification of OTP HID devices at a branch.

Provisioning is all or nothing. The device is programmed first (OATH-HOTP seed in slot 1, an
HMAC-SHA1 identification key in slot 2), then one transaction enrolls the seed with the OTP
center, registers the device at the caller's institution, records the device and audits it.
If programming fails, nothing is enrolled; if the transaction fails, the slots just written
are deleted again. Both slots are protected by an access code derived from the device serial
under a sealed key of this store, so a device whose undo could not run (pulled out) can
still be reprogrammed later.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

from authd import validate
from authd.app import App
from authd.context import Caller, current_caller
from authd.hid_otp import repository as repo
from authd.hid_otp.attached import AttachedDevice, DeviceManager, OpenDevice
from authd.otp.feature import OtpFeature
from authd.storage import Tx
from devices.errors import AlreadyPresent, AuthdError, BadRequest, WrongState
from devices.hid_otp import Slot, hmac_sha1_config, hotp_config
from devices.hid_otp.constants import ACC_CODE_SIZE
from devices.hid_otp.errors import (
    CommandRejectedError,
    SlotAlreadyConfiguredError,
    SlotNotConfiguredError,
)
from drivers.errors import DriverError

log = logging.getLogger(__name__)

OTP_SLOT = Slot.ONE  # a short press types the code
IDENT_SLOT = Slot.TWO  # challenge-response only, no touch needed
SEED_SIZE = 20
IDENT_CHALLENGE_SIZE = 32
_KEY_AAD = b"authd/hid_otp/access-code-key"


class OtpCenterApi(Protocol):
    """What provisioning uses of the OTP center (``authd.otp.service.OtpService``)."""

    def enroll(
        self,
        tx: Tx,
        *,
        serial: str,
        seed: bytes | None,
        kind: str,
        digits: int = 6,
        counter: int = 0,
        caller: Caller,
        customer_id: str,
        channel: str = "branch",
    ) -> object: ...

    def is_registered(self, tx: Tx, serial: str, institution: str) -> bool: ...


@dataclass(frozen=True)
class ProvisionRequest:
    device_serial: int
    digits: int = 6
    overwrite: bool = False
    identification: bool = True
    current_access_code: bytes | None = None
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
    device: repo.ProvisionedDevice | None


@dataclass(frozen=True)
class DeviceView:
    attached: AttachedDevice
    provisioned: repo.ProvisionedDevice | None


def _ident_aad(device_serial: int) -> bytes:
    return f"authd/hid_otp/ident-key/{device_serial}".encode()


def firmware_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(v) for v in version)


class HidService:
    def __init__(
        self, app: App, devices: DeviceManager, *, serial_prefix: str = "HID-"
    ) -> None:
        self.app = app
        self.devices = devices
        self.serial_prefix = serial_prefix

    # --- helpers ------------------------------------------------------------------------

    def otp_serial(self, device_serial: int) -> str:
        return f"{self.serial_prefix}{device_serial:010d}"

    @property
    def center(self) -> OtpCenterApi:
        otp = self.app.feature(OtpFeature)
        if otp is None:
            raise WrongState("the OTP center is not enabled on this daemon")
        return otp.center

    def _access_code_key(self) -> bytes:
        secrets = self.app.secrets

        def load(tx: Tx) -> bytes | None:
            return repo.get_key(tx, repo.ACCESS_CODE_KEY)

        sealed = self.app.db.run(load, write=False)
        if sealed is None:
            fresh = secrets.seal(secrets.random(32), _KEY_AAD)

            def create(tx: Tx) -> bytes | None:
                repo.put_key_once(tx, repo.ACCESS_CODE_KEY, fresh)
                return repo.get_key(tx, repo.ACCESS_CODE_KEY)

            sealed = self.app.db.run(create)
            assert sealed is not None
        return secrets.open(sealed, _KEY_AAD)

    def access_code(self, device_serial: int) -> bytes:
        """The 6-byte access code authd puts on the slots of this device."""
        key = self._access_code_key()
        mac = hmac.new(key, f"access-code/{device_serial}".encode(), hashlib.sha256)
        return mac.digest()[:ACC_CODE_SIZE]

    def _visible(self, tx: Tx, row: repo.ProvisionedDevice | None,
                 caller: Caller) -> repo.ProvisionedDevice | None:
        """What ``caller`` may see of a provisioning record: all of it at the institution that
        provisioned the device; where its OTP serial is registered too, the record without who
        provisioned it and when; elsewhere nothing (the device then looks like one authd did
        not provision, as an unknown device does)."""
        if row is None or row.institution == caller.institution:
            return row
        otp = self.app.feature(OtpFeature)
        if otp is not None and otp.center.is_registered(tx, row.otp_serial, caller.institution):
            return dataclasses.replace(row, institution="", provisioned_at=0.0,
                                       provisioned_by="")
        return None

    def _audit_failure(self, action: str, target: str, detail: dict[str, Any]) -> None:
        def write(tx: Tx) -> None:
            self.app.audit.record(tx, action=action, target=target, outcome="failed",
                                  detail=detail)

        try:
            self.app.db.run(write)
        except Exception:
            log.exception("could not audit a failed %s of %s", action, target)

    # --- listing ------------------------------------------------------------------------

    def list_devices(self) -> list[DeviceView]:
        caller = current_caller()
        attached = self.devices.list()
        serials = [a.serial for a in attached if a.serial]

        def load(tx: Tx) -> dict[int, repo.ProvisionedDevice]:
            found = {}
            for serial in serials:
                row = self._visible(tx, repo.get(tx, serial), caller)
                if row is not None:
                    found[serial] = row
            return found

        known = self.app.db.run(load, write=False) if serials else {}
        return [DeviceView(a, known.get(a.serial)) for a in attached]

    # --- provisioning -------------------------------------------------------------------

    def provision(self, request: ProvisionRequest) -> Provisioned:
        caller = current_caller()
        if request.digits not in (6, 8):
            raise BadRequest("digits must be 6 or 8")
        if request.device_serial <= 0:
            raise BadRequest("device_serial is required")
        validate.customer_ref(request.customer_id)
        center = self.center
        otp_serial = self.otp_serial(request.device_serial)
        with self.devices.open(request.device_serial) as device:
            existing = self.app.db.run(lambda tx: repo.get(tx, device.serial), write=False)
            if existing is not None:
                raise AlreadyPresent(
                    f"device {device.serial} is already provisioned as {existing.otp_serial}"
                )
            slots = [OTP_SLOT, IDENT_SLOT] if request.identification else [OTP_SLOT]
            status = device.session.status()
            for slot in slots:
                if status.is_configured(slot) and not request.overwrite:
                    raise SlotAlreadyConfiguredError(slot)
            firmware = firmware_text(status.version)
            new_code = self.access_code(device.serial)
            seed = self.app.secrets.random(SEED_SIZE)
            ident_key = self.app.secrets.random(SEED_SIZE) if request.identification else None
            detail: dict[str, Any] = {
                "device_serial": device.serial,
                "firmware": firmware,
                "digits": request.digits,
                "identification": request.identification,
                "operator": request.operator,
            }

            programmed = self._program(device, request, seed, ident_key, new_code, detail,
                                       otp_serial)

            def commit(tx: Tx) -> None:
                # Enrolling registers the device at the caller's institution (its issuer).
                center.enroll(tx, serial=otp_serial, seed=seed, kind="hotp",
                              digits=request.digits, counter=0, caller=caller,
                              customer_id=request.customer_id, channel="branch")
                sealed = (
                    self.app.secrets.seal(ident_key, _ident_aad(device.serial))
                    if ident_key is not None else None
                )
                repo.insert(tx, repo.ProvisionedDevice(
                    device.serial, otp_serial, caller.institution, firmware, request.digits,
                    sealed, time.time(), caller.subject,
                ))
                self.app.audit.record(tx, action="hid.provision", target=otp_serial,
                                      outcome="ok", detail=detail)

            try:
                self.app.db.run(commit)
            except BaseException as exc:
                undone = self._undo(device, programmed, new_code)
                self._audit_failure("hid.provision", otp_serial, {
                    **detail, "stage": "enroll", "error": type(exc).__name__,
                    "device_restored": undone,
                })
                raise
        return Provisioned(device.serial, otp_serial, request.digits, caller.institution,
                           request.identification, firmware, request.customer_id)

    def _program(
        self,
        device: OpenDevice,
        request: ProvisionRequest,
        seed: bytes,
        ident_key: bytes | None,
        new_code: bytes,
        detail: dict[str, Any],
        otp_serial: str,
    ) -> list[Slot]:
        """Write the slots; on failure undo what was written and raise."""
        programmed: list[Slot] = []
        current = request.current_access_code or new_code
        try:
            device.session.put_configuration(
                OTP_SLOT, hotp_config(seed, digits=request.digits, access_code=new_code),
                access_code=current,
            )
            programmed.append(OTP_SLOT)
            if ident_key is not None:
                device.session.put_configuration(
                    IDENT_SLOT, hmac_sha1_config(ident_key, access_code=new_code),
                    access_code=current,
                )
                programmed.append(IDENT_SLOT)
        except BaseException as exc:
            undone = self._undo(device, programmed, new_code)
            self._audit_failure("hid.provision", otp_serial, {
                **detail, "stage": "program", "error": type(exc).__name__,
                "device_restored": undone,
            })
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

    # --- identification -----------------------------------------------------------------

    def identify(self, device_serial: int) -> Identification:
        caller = current_caller()
        if device_serial <= 0:
            raise BadRequest("device_serial is required")
        with self.devices.open(device_serial) as device:
            row = self.app.db.run(
                lambda tx: self._visible(tx, repo.get(tx, device_serial), caller), write=False)
            if row is None:
                return Identification("not-provisioned", device_serial, None)
            if row.ident_key is None:
                return Identification("no-identification-key", device_serial, row)
            key = self.app.secrets.open(row.ident_key, _ident_aad(device_serial))
            challenge = os.urandom(IDENT_CHALLENGE_SIZE)
            expected = hmac.new(key, challenge, hashlib.sha1).digest()
            try:
                answer = device.session.calculate_hmac_sha1(IDENT_SLOT, challenge)
            except (SlotNotConfiguredError, CommandRejectedError):
                answer = b""
            outcome = "identified" if hmac.compare_digest(answer, expected) else "mismatch"

        def audit(tx: Tx) -> None:
            self.app.audit.record(tx, action="hid.identify", target=row.otp_serial,
                                  outcome=outcome, detail={"device_serial": device_serial})

        self.app.db.run(audit)
        return Identification(outcome, device_serial, row)
