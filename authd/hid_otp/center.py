"""The center's side of HID OTP provisioning: reservations, confirmation, provisioning records,
identification checks.

Provisioning spans the branch (the device) and the center (the seed's only home):

1. **reserve**: the center draws the seed and the identification key from its HSM's RNG, keeps
   them sealed in a pending reservation with an expiry, and hands them to the branch once;
2. the branch programs the device;
3. **confirm**: one transaction at the center enrolls the seed (HOTP, registered at the caller's
   institution), records the device with its sealed identification key, ends the reservation
   and audits it. Confirming again answers the same (the branch may not have heard the first
   answer). A reservation neither confirmed nor cancelled before it expires is expired by the
   sweeper (or by the confirmation that comes too late): nothing is enrolled, and the branch
   undoes or overwrites what it programmed.

So no seed is enrolled that no device holds (enrollment happens only once the branch says the
device holds it), and no device is claimed as enrolled that is not (the branch reports success
only after the center confirmed).

:class:`HidCenter` is what the branch side needs; :class:`LocalHidCenter` serves it from the
store on a node with the center role (in process in the single process, behind
``authd.v1.HidOtpCenterService`` for branch nodes), ``authd/hid_otp/remote.py`` over the link.
Blocking code: callers run it in a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from authd import validate
from authd.app import App
from authd.context import SYSTEM, Caller, current_caller
from authd.hid_otp import repository as repo
from authd.hid_otp.settings import HidOtpSettings
from authd.otp.feature import OtpFeature
from authd.storage import Tx
from devices.errors import AlreadyPresent, BadRequest, NoSuchObject, WrongState
from devices.hid_otp.constants import ACC_CODE_SIZE

log = logging.getLogger(__name__)

SEED_SIZE = 20
MAX_CHALLENGE = 64
PROVISIONING_ID = re.compile(r"[0-9a-f]{32}")
KEEP_SETTLED_SECONDS = 24 * 3600.0
_KEY_AAD = b"authd/hid_otp/access-code-key"

IDENTIFIED = "identified"
MISMATCH = "mismatch"
NOT_PROVISIONED = "not-provisioned"
NO_IDENTIFICATION_KEY = "no-identification-key"


@dataclass(frozen=True)
class ReserveRequest:
    provisioning_id: str
    device_serial: int
    digits: int
    identification: bool
    firmware: str
    operator: str
    customer_id: str  # the institution's customer reference the device is enrolled for


@dataclass(frozen=True)
class Reservation:
    provisioning_id: str
    otp_serial: str
    seed: bytes = field(repr=False)
    ident_key: bytes | None = field(repr=False)
    access_code: bytes = field(repr=False)
    expires_at: float
    ttl: float


@dataclass(frozen=True)
class ProvisioningRecord:
    """A provisioning record as the caller may see it (no key)."""

    device_serial: int
    otp_serial: str
    institution: str  # "" when the caller may not know who provisioned it
    firmware: str
    digits: int
    identification: bool
    provisioned_at: float  # 0 when the caller may not know


class HidCenter(Protocol):
    """What the branch side of provisioning needs of the center (blocking calls)."""

    def reserve(self, request: ReserveRequest) -> Reservation: ...

    def confirm(self, provisioning_id: str, operator: str) -> ProvisioningRecord: ...

    def cancel(self, provisioning_id: str, operator: str, *, stage: str, error: str,
               restored: bool) -> None: ...

    def records(self, device_serials: Sequence[int]) -> dict[int, ProvisioningRecord]: ...

    def check_identification(self, device_serial: int, challenge: bytes,
                             response: bytes) -> tuple[str, ProvisioningRecord | None]: ...


def provisioning_id(value: str) -> str:
    return validate.identifier(value, "provisioning_id", PROVISIONING_ID,
                               "32 lower-case hex digits")


def _ident_aad(device_serial: int) -> bytes:
    return f"authd/hid_otp/ident-key/{device_serial}".encode()


def _seed_aad(reservation_id: str) -> bytes:
    return f"authd/hid_otp/reserved-seed/{reservation_id}".encode()


class _Expired(Exception):
    """A confirmation came after the reservation's expiry (recorded, then refused)."""


class LocalHidCenter:
    """:class:`HidCenter` on the store of a node with the center role."""

    def __init__(self, app: App, settings: HidOtpSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock

    @property
    def _otp(self) -> OtpFeature:
        return self.app.require(OtpFeature)

    def otp_serial(self, device_serial: int) -> str:
        return f"{self.settings.serial_prefix}{device_serial:010d}"

    @staticmethod
    def _caller(operator: str) -> Caller:
        """The caller, with the teller as its operator when no branch node named one."""
        caller = current_caller()
        if not caller.operator and operator:
            return dataclasses.replace(caller, operator=operator)
        return caller

    # ------------------------------------------------------------------ secrets

    def _access_code_key(self) -> bytes:
        secrets = self.app.secrets
        sealed = self.app.db.run(lambda tx: repo.get_key(tx, repo.ACCESS_CODE_KEY), write=False)
        if sealed is None:
            fresh = secrets.seal(secrets.random(32), _KEY_AAD)

            def create(tx: Tx) -> bytes | None:
                repo.put_key_once(tx, repo.ACCESS_CODE_KEY, fresh)
                return repo.get_key(tx, repo.ACCESS_CODE_KEY)

            sealed = self.app.db.run(create)
            assert sealed is not None
        return secrets.open(sealed, _KEY_AAD)

    def access_code(self, device_serial: int) -> bytes:
        """The 6-byte access code authd puts on the slots of this device: derived from its
        serial under a sealed key of the center, so any branch can reprogram what authd
        programmed, even a device whose undo could not run."""
        mac = hmac.new(self._access_code_key(), f"access-code/{device_serial}".encode(),
                       hashlib.sha256)
        return mac.digest()[:ACC_CODE_SIZE]

    # ------------------------------------------------------------------ what a caller sees

    def _visible(self, tx: Tx, row: repo.ProvisionedDevice | None,
                 caller: Caller) -> repo.ProvisionedDevice | None:
        """All of a record at the institution that provisioned the device; where its OTP
        serial is registered too, the record without who provisioned it and when; elsewhere
        nothing (the device then looks like one authd did not provision, as an unknown one)."""
        if row is None or row.institution == caller.institution:
            return row
        if self._otp.service.is_registered(tx, row.otp_serial, caller.institution):
            return dataclasses.replace(row, institution="", provisioned_at=0.0,
                                       provisioned_by="")
        return None

    @staticmethod
    def _record(row: repo.ProvisionedDevice) -> ProvisioningRecord:
        return ProvisioningRecord(row.device_serial, row.otp_serial, row.institution,
                                  row.firmware, row.digits, row.ident_key is not None,
                                  row.provisioned_at)

    def records(self, device_serials: Sequence[int]) -> dict[int, ProvisioningRecord]:
        caller = current_caller()

        def load(tx: Tx) -> dict[int, ProvisioningRecord]:
            found = {}
            for serial in dict.fromkeys(device_serials):
                row = self._visible(tx, repo.get(tx, serial), caller)
                if row is not None:
                    found[serial] = self._record(row)
            return found

        return self.app.db.run(load, write=False) if device_serials else {}

    # ------------------------------------------------------------------ reserve

    def reserve(self, request: ReserveRequest) -> Reservation:
        caller = self._caller(request.operator)
        pid = provisioning_id(request.provisioning_id)
        if request.digits not in (6, 8):
            raise BadRequest("digits must be 6 or 8", field="digits")
        if not 0 < request.device_serial <= 0xFFFFFFFF:
            raise BadRequest("device_serial is required", field="device_serial")
        validate.text(request.firmware, "firmware", max_length=16)
        validate.customer_ref(request.customer_id)
        otp_serial = self.otp_serial(request.device_serial)
        secrets = self.app.secrets
        seed = secrets.random(SEED_SIZE)
        ident_key = secrets.random(SEED_SIZE) if request.identification else None
        access = self.access_code(request.device_serial)
        now = self.clock()
        ttl = self.settings.reservation_seconds
        row = repo.ReservationRow(
            pid, request.device_serial, otp_serial, caller.institution, caller.subject,
            caller.operator, request.digits, request.firmware,
            secrets.seal(seed, _seed_aad(pid)),
            secrets.seal(ident_key, _ident_aad(request.device_serial)) if ident_key else None,
            ident_key is not None, repo.PENDING, now, now + ttl, request.customer_id)
        detail = {"device_serial": request.device_serial, "firmware": request.firmware,
                  "digits": request.digits, "identification": ident_key is not None,
                  "provisioning_id": pid}

        def store(tx: Tx) -> None:
            existing = repo.get(tx, request.device_serial)
            if existing is not None:
                raise AlreadyPresent(f"device {request.device_serial} is already provisioned "
                                     f"as {existing.otp_serial}")
            try:
                self._otp.service.status(tx, otp_serial, SYSTEM)
            except NoSuchObject:
                pass
            else:
                raise AlreadyPresent(f"OTP device {otp_serial} is enrolled already")
            if repo.get_reservation(tx, pid) is not None:
                raise AlreadyPresent(f"provisioning {pid} exists already: draw a new id")
            self._make_room(tx, request.device_serial, caller, now)
            repo.insert_reservation(tx, row)
            self.app.audit.record(tx, action="hid.reserve", target=otp_serial,
                                  outcome="pending", caller=caller,
                                  detail={**detail, "expires_at": round(now + ttl, 3)})

        try:
            self.app.db.run(store)
        except (AlreadyPresent, WrongState, BadRequest) as exc:
            self._audit_refusal(otp_serial, caller, detail, exc)
            raise
        except Exception as exc:
            if type(exc).__name__ in ("IntegrityError", "UniqueViolation"):
                raise WrongState(f"device {request.device_serial} is being provisioned at "
                                 "this moment") from None
            raise
        return Reservation(pid, otp_serial, seed, ident_key, access, now + ttl, ttl)

    def _make_room(self, tx: Tx, device_serial: int, caller: Caller, now: float) -> None:
        """End a pending reservation of the same device: expired, or superseded by a new
        attempt of the same institution (the device is in this teller's hands)."""
        pending = repo.pending_for(tx, device_serial)
        if pending is None:
            return
        if pending.expires_at <= now:
            state = repo.EXPIRED
        elif pending.institution == caller.institution:
            state = repo.SUPERSEDED
        else:
            raise WrongState(f"device {device_serial} is being provisioned; try again in "
                             f"{max(1, round(pending.expires_at - now))} s")
        repo.settle(tx, pending.id, state, now)
        self.app.audit.record(tx, action="hid.provision", target=pending.otp_serial,
                              outcome=state, caller=caller if state == repo.SUPERSEDED
                              else SYSTEM, detail={"device_serial": device_serial,
                                                   "provisioning_id": pending.id,
                                                   "terminal": pending.terminal})

    def _audit_refusal(self, target: str, caller: Caller, detail: dict[str, object],
                       exc: Exception) -> None:
        def write(tx: Tx) -> None:
            self.app.audit.record(tx, action="hid.provision", target=target, outcome="failed",
                                  caller=caller, detail={**detail, "stage": "reserve",
                                                         "error": type(exc).__name__})

        try:
            self.app.db.run(write)
        except Exception:
            log.exception("could not audit a refused provisioning of %s", target)

    # ------------------------------------------------------------------ confirm, cancel

    def _own(self, tx: Tx, pid: str, caller: Caller) -> repo.ReservationRow:
        found = repo.get_reservation(tx, provisioning_id(pid), lock=True)
        if found is None or found.institution != caller.institution:
            raise NoSuchObject(f"no provisioning {pid}")
        return found

    def confirm(self, provisioning_id: str, operator: str) -> ProvisioningRecord:
        caller = self._caller(operator)
        now = self.clock()

        def settle(tx: Tx) -> ProvisioningRecord | None:
            r = self._own(tx, provisioning_id, caller)
            if r.state == repo.CONFIRMED:
                device = repo.get(tx, r.device_serial)
                assert device is not None
                return self._record(device)
            if r.state != repo.PENDING:
                raise WrongState(f"provisioning {r.id} was {r.state}: nothing is enrolled; "
                                 "program the device again", reason=f"PROVISIONING_{r.state}"
                                 .upper())
            if r.expires_at <= now:
                repo.settle(tx, r.id, repo.EXPIRED, now)
                self._audit_settled(tx, r, repo.EXPIRED, SYSTEM, {"stage": "confirm"})
                return None
            assert r.sealed_seed is not None
            seed = self.app.secrets.open(r.sealed_seed, _seed_aad(r.id))
            # Enrolling registers the device at the caller's institution (its issuer).
            self._otp.service.enroll(tx, serial=r.otp_serial, seed=seed, kind="hotp",
                                    digits=r.digits, counter=0, caller=caller,
                                    customer_id=r.customer_id, channel="branch")
            device = repo.ProvisionedDevice(r.device_serial, r.otp_serial, r.institution,
                                            r.firmware, r.digits, r.sealed_ident_key, now,
                                            r.terminal)
            repo.insert(tx, device)
            repo.settle(tx, r.id, repo.CONFIRMED, now)
            self._audit_settled(tx, r, "ok", caller, {})
            return self._record(device)

        record = self.app.db.run(settle)
        if record is None:
            raise WrongState(f"provisioning {provisioning_id} expired before it was confirmed: "
                             "nothing is enrolled; program the device again",
                             reason="PROVISIONING_EXPIRED")
        return record

    def _audit_settled(self, tx: Tx, r: repo.ReservationRow, outcome: str, caller: Caller,
                       more: dict[str, object]) -> None:
        self.app.audit.record(tx, action="hid.provision", target=r.otp_serial, outcome=outcome,
                              caller=caller, detail={
                                  "device_serial": r.device_serial, "firmware": r.firmware,
                                  "digits": r.digits, "identification": r.identification,
                                  "operator": r.operator, "terminal": r.terminal,
                                  "provisioning_id": r.id, **more})

    def cancel(self, provisioning_id: str, operator: str, *, stage: str, error: str,
               restored: bool) -> None:
        caller = self._caller(operator)
        validate.text(stage, "stage", max_length=32)
        validate.text(error, "error", max_length=64)
        now = self.clock()

        def settle(tx: Tx) -> None:
            try:
                r = self._own(tx, provisioning_id, caller)
            except NoSuchObject:
                return  # nothing reserved (or not the caller's): nothing to end
            if r.state == repo.CONFIRMED:
                raise WrongState(f"provisioning {r.id} is confirmed: the device is enrolled")
            if r.state == repo.PENDING:
                repo.settle(tx, r.id, repo.CANCELLED, now)
                self._audit_settled(tx, r, "failed", caller, {
                    "stage": stage, "error": error, "device_restored": restored})

        self.app.db.run(settle)

    def expire_overdue(self) -> int:
        """Expire every pending reservation past its expiry (the sweeper); returns how many.
        Safe on many nodes at once: each reservation is settled by one of them."""
        now = self.clock()

        def sweep(tx: Tx) -> int:
            done = 0
            for r in repo.overdue(tx, now):
                if repo.settle(tx, r.id, repo.EXPIRED, now):
                    self._audit_settled(tx, r, repo.EXPIRED, SYSTEM, {"stage": "sweep"})
                    done += 1
            repo.prune_settled(tx, now - KEEP_SETTLED_SECONDS)
            return done

        return self.app.db.run(sweep)

    # ------------------------------------------------------------------ identification

    def check_identification(self, device_serial: int, challenge: bytes,
                             response: bytes) -> tuple[str, ProvisioningRecord | None]:
        caller = current_caller()
        if not 0 < len(challenge) <= MAX_CHALLENGE or len(response) > MAX_CHALLENGE:
            raise BadRequest(f"challenge must be 1..{MAX_CHALLENGE} bytes", field="challenge")
        row = self.app.db.run(
            lambda tx: self._visible(tx, repo.get(tx, device_serial), caller), write=False)
        if row is None:
            return NOT_PROVISIONED, None
        if row.ident_key is None:
            return NO_IDENTIFICATION_KEY, self._record(row)
        key = self.app.secrets.open(row.ident_key, _ident_aad(device_serial))
        expected = hmac.new(key, challenge, hashlib.sha1).digest()
        outcome = IDENTIFIED if hmac.compare_digest(response, expected) else MISMATCH

        def audit(tx: Tx) -> None:
            self.app.audit.record(tx, action="hid.identify", target=row.otp_serial,
                                  outcome=outcome, caller=caller,
                                  detail={"device_serial": device_serial})

        self.app.db.run(audit)
        return outcome, self._record(row)
