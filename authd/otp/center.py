"""The OTP center: devices, registrations and the shared failure counter, on the store.

Every method takes an open transaction, so callers can compose several steps into one
all-or-nothing change (e.g. HID provisioning enrolls and registers in one transaction).
A device's row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite) before its counter is read, so the lockout is exact across threads, processes and nodes.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from authd.audit import AuditLog
from authd.context import Caller
from authd.secrets import SecretBox
from authd.storage import Tx
from devices.errors import AlreadyPresent, BadRequest, NoSuchObject, WrongState
from devices.otp import rules
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind, Outcome, Params, Policy, State

_DEVICE_COLUMNS = ("serial, kind, digits, period, algorithm, seed, last_counter, drift, state,"
                   " failures, issuer, replaced_by, warranty_until, updated_at")

MESSAGES = {
    Outcome.ACCEPTED: "OTP accepted.",
    Outcome.WRONG_CODE: "The OTP code is wrong. {left} attempt(s) left before the OTP is "
                        "locked at every institution.",
    Outcome.LOCKED: "The OTP is locked after {limit} consecutive wrong codes at any "
                    "institution. Visit a branch of a financial institution with your ID to "
                    "unlock it.",
    Outcome.REPORTED_LOST: "This OTP has been reported lost or stolen. It cannot be used until "
                           "the report is withdrawn in person at a branch.",
    Outcome.NOT_REGISTERED: "This OTP is not registered at this institution.",
    Outcome.EXPIRED_OR_REPLACED: "This OTP has been replaced or has expired. Use your new OTP.",
    Outcome.REPLAYED: "This OTP code has already been used. Wait for the next code.",
}


@dataclass(frozen=True)
class Registration:
    institution: str
    channel: str
    registered_at: float
    failures_here: int


@dataclass(frozen=True)
class Device:
    serial: str
    params: Params
    state: State
    failures: int
    issuer: str
    replaced_by: str | None
    warranty_until: float
    updated_at: float
    last: int
    drift: int
    sealed_seed: bytes
    registrations: tuple[Registration, ...] = ()

    def registered_at(self, institution: str) -> bool:
        return any(r.institution == institution for r in self.registrations)


@dataclass(frozen=True)
class VerifyResult:
    outcome: Outcome
    failures: int
    attempts_left: int
    message: str


@dataclass(frozen=True)
class Enrolled:
    device: Device
    generated_seed: bytes | None
    provisioning_uri: str


def _aad(serial: str) -> bytes:
    return b"otp-seed:" + serial.encode()


def provisioning_uri(serial: str, seed: bytes, params: Params, issuer: str, counter: int) -> str:
    """An otpauth:// URI (Key Uri Format) for programming a generator or an authenticator."""
    secret = base64.b32encode(seed).decode().rstrip("=")
    kind = params.kind.value
    uri = (f"otpauth://{kind}/{quote(issuer)}:{quote(serial)}?secret={secret}"
           f"&issuer={quote(issuer)}&digits={params.digits}&algorithm={params.algorithm.value}")
    if params.kind is Kind.TOTP:
        return uri + f"&period={params.period}"
    return uri + f"&counter={counter}"


class OtpCenter:
    def __init__(self, secrets: SecretBox, audit: AuditLog, policy: Policy,
                 clock: Callable[[], float] = time.time) -> None:
        self.secrets = secrets
        self.audit = audit
        self.policy = policy
        self.clock = clock

    # ------------------------------------------------------------------ reading

    def _load(self, tx: Tx, serial: str, *, lock: bool) -> Device:
        row = tx.one(f"SELECT {_DEVICE_COLUMNS} FROM otp_devices WHERE serial = ?"
                     + (tx.for_update if lock else ""), (serial,))
        if row is None:
            raise NoSuchObject(f"no OTP device with serial {serial}")
        regs = tx.all("SELECT institution, channel, registered_at, failures_here"
                      " FROM otp_registrations WHERE serial = ?"
                      " ORDER BY registered_at, institution", (serial,))
        return Device(
            serial=row[0],
            params=Params(Kind(row[1]), int(row[2]), int(row[3]), Algorithm(row[4])),
            sealed_seed=bytes(row[5]), last=int(row[6]), drift=int(row[7]), state=State(row[8]),
            failures=int(row[9]), issuer=row[10], replaced_by=row[11],
            warranty_until=float(row[12]), updated_at=float(row[13]),
            registrations=tuple(Registration(r[0], r[1], float(r[2]), int(r[3])) for r in regs))

    def status(self, tx: Tx, serial: str) -> Device:
        return self._load(tx, rules.check_serial(serial), lock=False)

    def attempts_left(self, failures: int) -> int:
        return max(0, self.policy.lockout_threshold - failures)

    # ------------------------------------------------------------------ lifecycle

    def enroll(self, tx: Tx, *, serial: str, seed: bytes | None, kind: str | Kind,
               digits: int = 6, period: int = 60, algorithm: str | Algorithm = "SHA1",
               counter: int = 0, warranty_until: float = 0.0, caller: Caller,
               channel: str = "branch") -> Enrolled:
        """Enroll a device and register it at the caller's institution (its issuer)."""
        rules.check_serial(serial)
        try:
            params = Params(Kind(kind), digits, period, Algorithm(algorithm)).check()
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        generated = None
        if not seed:
            seed = generated = self.secrets.random(params.algorithm.seed_bytes)
        if not 16 <= len(seed) <= 64:
            raise BadRequest("seed must be 16..64 bytes")
        if counter < 0:
            raise BadRequest("counter must not be negative")
        if tx.one("SELECT 1 FROM otp_devices WHERE serial = ?", (serial,)) is not None:
            raise AlreadyPresent(f"OTP device {serial} is enrolled already")
        now = self.clock()
        last = counter - 1 if params.kind is Kind.HOTP else -1
        tx.execute(
            "INSERT INTO otp_devices (serial, kind, digits, period, algorithm, seed, last_counter,"
            " drift, state, failures, issuer, replaced_by, warranty_until, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 0, ?, NULL, ?, ?, ?)",
            (serial, params.kind.value, params.digits, params.period, params.algorithm.value,
             self.secrets.seal(seed, _aad(serial)), last, State.ACTIVE.value,
             caller.institution, warranty_until, now, now))
        self._add_registration(tx, serial, caller.institution, channel, now)
        self.audit.record(tx, action="otp.enroll", target=serial, outcome="enrolled",
                          caller=caller, detail={"kind": params.kind.value,
                                                 "digits": params.digits,
                                                 "seed_source": "generated" if generated
                                                 else "given"})
        uri = provisioning_uri(serial, seed, params, caller.institution, counter)
        return Enrolled(self._load(tx, serial, lock=False), generated, uri if generated else "")

    def _add_registration(self, tx: Tx, serial: str, institution: str, channel: str,
                          now: float) -> None:
        tx.execute("INSERT INTO otp_registrations (serial, institution, channel, registered_at,"
                   " failures_here) VALUES (?, ?, ?, ?, 0)", (serial, institution, channel, now))

    def register(self, tx: Tx, *, serial: str, institution: str, caller: Caller,
                 online: bool = False, strong_authentication: bool = True) -> Device:
        """Register the device at ``institution`` (DOMAIN.md §3)."""
        device = self._load(tx, rules.check_serial(serial), lock=True)
        if device.state in (State.REPLACED, State.EXPIRED):
            raise WrongState(f"OTP device {serial} was {device.state.value}; "
                                     "register the new device instead")
        if online and device.state is State.LOST:
            raise WrongState(f"OTP device {serial} is reported lost: it can be "
                                     "registered only at a branch")
        if online and not strong_authentication:
            raise WrongState("online registration needs a login with a certificate or "
                                     "another strong means; otherwise register at a branch")
        if device.registered_at(institution):
            raise AlreadyPresent(f"OTP device {serial} is registered at {institution} already")
        self._add_registration(tx, serial, institution, "online" if online else "branch",
                               self.clock())
        self.audit.record(tx, action="otp.register", target=serial, outcome="registered",
                          caller=caller, detail={"institution": institution,
                                                 "channel": "online" if online else "branch"})
        return self._load(tx, serial, lock=False)

    def deregister(self, tx: Tx, *, serial: str, institution: str, caller: Caller,
                   operator: str, reason: str) -> Device:
        device = self._load(tx, rules.check_serial(serial), lock=True)
        if not device.registered_at(institution):
            raise NoSuchObject(f"OTP device {serial} is not registered at {institution}")
        tx.execute("DELETE FROM otp_registrations WHERE serial = ? AND institution = ?",
                   (serial, institution))
        self.audit.record(tx, action="otp.deregister", target=serial, outcome="deregistered",
                          caller=caller, detail={"operator": operator, "reason": reason})
        return self._load(tx, serial, lock=False)

    def _require_registered(self, device: Device, institution: str) -> None:
        if not device.registered_at(institution):
            raise WrongState(
                f"OTP device {device.serial} is not registered at {institution}")

    def _set_state(self, tx: Tx, serial: str, state: State, failures: int | None = None) -> None:
        if failures is None:
            tx.execute("UPDATE otp_devices SET state = ?, updated_at = ? WHERE serial = ?",
                       (state.value, self.clock(), serial))
        else:
            tx.execute("UPDATE otp_devices SET state = ?, failures = ?, updated_at = ?"
                       " WHERE serial = ?", (state.value, failures, self.clock(), serial))
            tx.execute("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ?",
                       (serial,))

    def unlock(self, tx: Tx, *, serial: str, caller: Caller, operator: str,
               reason: str) -> Device:
        """Clear the lock and the consecutive-failure counter (customer present at a branch)."""
        device = self._load(tx, rules.check_serial(serial), lock=True)
        self._require_registered(device, caller.institution)
        if device.state not in (State.LOCKED, State.ACTIVE):
            raise WrongState(f"OTP device {serial} is {device.state.value}; "
                                     "only a locked or active device can be reset")
        self._set_state(tx, serial, State.ACTIVE, failures=0)
        self.audit.record(tx, action="otp.unlock", target=serial, outcome="unlocked",
                          caller=caller, detail={"operator": operator, "reason": reason,
                                                 "failures_before": device.failures,
                                                 "state_before": device.state.value})
        return self._load(tx, serial, lock=False)

    def report_lost(self, tx: Tx, *, serial: str, caller: Caller, reason: str) -> Device:
        device = self._load(tx, rules.check_serial(serial), lock=True)
        self._require_registered(device, caller.institution)
        if device.state not in (State.ACTIVE, State.LOCKED):
            raise WrongState(f"OTP device {serial} is {device.state.value} already")
        self._set_state(tx, serial, State.LOST)
        self.audit.record(tx, action="otp.report_lost", target=serial, outcome="reported_lost",
                          caller=caller, detail={"reason": reason,
                                                 "state_before": device.state.value})
        return self._load(tx, serial, lock=False)

    def withdraw_loss_report(self, tx: Tx, *, serial: str, caller: Caller, operator: str,
                             reason: str) -> Device:
        device = self._load(tx, rules.check_serial(serial), lock=True)
        self._require_registered(device, caller.institution)
        if device.state is not State.LOST:
            raise WrongState(f"OTP device {serial} is not reported lost")
        back = (State.LOCKED if device.failures >= self.policy.lockout_threshold
                else State.ACTIVE)
        self._set_state(tx, serial, back)
        self.audit.record(tx, action="otp.withdraw_loss_report", target=serial,
                          outcome=back.value, caller=caller,
                          detail={"operator": operator, "reason": reason})
        return self._load(tx, serial, lock=False)

    def replace(self, tx: Tx, *, old_serial: str, new_serial: str, warranty_expired: bool,
                seed: bytes | None, kind: str | Kind | None, digits: int | None,
                period: int | None, algorithm: str | Algorithm | None, counter: int,
                caller: Caller, operator: str) -> tuple[Device, Enrolled]:
        """Replace a device. A reissue carries every registration over; after a warranty
        expiry the new device is registered only here (DOMAIN.md §3)."""
        old = self._load(tx, rules.check_serial(old_serial), lock=True)
        self._require_registered(old, caller.institution)
        if old.state in (State.REPLACED, State.EXPIRED):
            raise WrongState(f"OTP device {old_serial} was {old.state.value} already")
        p = old.params
        enrolled = self.enroll(
            tx, serial=new_serial, seed=seed, kind=kind or p.kind, digits=digits or p.digits,
            period=period or p.period, algorithm=algorithm or p.algorithm, counter=counter,
            caller=caller)
        if not warranty_expired:
            now = self.clock()
            for reg in old.registrations:
                if reg.institution != caller.institution:
                    self._add_registration(tx, new_serial, reg.institution, reg.channel, now)
        state = State.EXPIRED if warranty_expired else State.REPLACED
        tx.execute("UPDATE otp_devices SET state = ?, replaced_by = ?, updated_at = ?"
                   " WHERE serial = ?", (state.value, new_serial, self.clock(), old_serial))
        self.audit.record(tx, action="otp.replace", target=old_serial, outcome=state.value,
                          caller=caller, detail={"operator": operator, "new_serial": new_serial,
                                                 "carried_over": not warranty_expired})
        new = self._load(tx, new_serial, lock=False)
        return self._load(tx, old_serial, lock=False), Enrolled(
            new, enrolled.generated_seed, enrolled.provisioning_uri)

    def resync(self, tx: Tx, *, serial: str, first: str, second: str, caller: Caller,
               operator: str) -> Device:
        device = self._load(tx, rules.check_serial(serial), lock=True)
        self._require_registered(device, caller.institution)
        if device.state is not State.ACTIVE:
            raise WrongState(f"OTP device {serial} is {device.state.value}; "
                                     "only an active device can be resynchronised")
        rules.check_code(first, device.params.digits)
        rules.check_code(second, device.params.digits)
        seed = self.secrets.open(device.sealed_seed, _aad(serial))
        after = rules.resync(self._rule_state(device), seed, first, second, self.clock(),
                             self.policy)
        if after is None:
            self.audit.record(tx, action="otp.resync", target=serial, outcome="not_found",
                              caller=caller, detail={"operator": operator})
            raise WrongState("the two codes are not consecutive codes of this device "
                                     "within the resync window")
        tx.execute("UPDATE otp_devices SET last_counter = ?, drift = ?, updated_at = ?"
                   " WHERE serial = ?", (after.last, after.drift, self.clock(), serial))
        self.audit.record(tx, action="otp.resync", target=serial, outcome="resynced",
                          caller=caller, detail={"operator": operator})
        return self._load(tx, serial, lock=False)

    # ------------------------------------------------------------------ verification

    @staticmethod
    def _rule_state(device: Device) -> rules.DeviceState:
        return rules.DeviceState(device.serial, device.params, device.state, device.failures,
                                 device.last, device.drift)

    def verify(self, tx: Tx, *, serial: str, code: str, caller: Caller) -> VerifyResult:
        """One verification, under the device's row lock; audited.

        Raises only before it writes (unknown device, malformed code, unreadable seed), so a
        caller batching verifications in one transaction needs no savepoint around it."""
        lock = tx.for_update + " OF d" if tx.for_update else ""
        row = tx.one("SELECT d.kind, d.digits, d.period, d.algorithm, d.seed, d.last_counter,"
                     " d.drift, d.state, d.failures, r.institution FROM otp_devices d"
                     " LEFT JOIN otp_registrations r ON r.serial = d.serial AND r.institution = ?"
                     " WHERE d.serial = ?" + lock, (caller.institution, serial))
        if row is None:
            raise NoSuchObject(f"no OTP device with serial {serial}")
        state, failures = State(row[7]), int(row[8])
        if row[9] is None:
            return self._answer(tx, serial, Outcome.NOT_REGISTERED, failures, caller)
        refused = rules.refusal(state)
        if refused is not None:
            return self._answer(tx, serial, refused, failures, caller)
        params = Params(Kind(row[0]), int(row[1]), int(row[2]), Algorithm(row[3]))
        rules.check_code(code, params.digits)
        seed = self.secrets.open(bytes(row[4]), _aad(serial))
        before = rules.DeviceState(serial, params, state, failures, int(row[5]), int(row[6]))
        decision = rules.verify(before, seed, code, self.clock(), self.policy)
        after = decision.device
        if decision.outcome is Outcome.ACCEPTED:
            tx.execute("UPDATE otp_devices SET failures = 0, last_counter = ?, updated_at = ?"
                       " WHERE serial = ?", (after.last, self.clock(), serial))
            if failures:
                tx.execute("UPDATE otp_registrations SET failures_here = 0 WHERE serial = ?",
                           (serial,))
        elif decision.outcome is Outcome.WRONG_CODE:
            tx.execute("UPDATE otp_devices SET failures = ?, state = ?, updated_at = ?"
                       " WHERE serial = ?", (after.failures, after.state.value, self.clock(),
                                             serial))
            tx.execute("UPDATE otp_registrations SET failures_here = failures_here + 1"
                       " WHERE serial = ? AND institution = ?", (serial, caller.institution))
        return self._answer(tx, serial, decision.outcome, after.failures, caller,
                            locked_now=after.state is State.LOCKED)

    def _answer(self, tx: Tx, serial: str, outcome: Outcome, failures: int, caller: Caller,
                locked_now: bool = False) -> VerifyResult:
        detail: dict[str, object] = ({"failures": failures, "locked_now": True} if locked_now
                                     else {"failures": failures})
        self.audit.record(tx, action="otp.verify", target=serial, outcome=outcome.value,
                          caller=caller, detail=detail)
        left = self.attempts_left(failures)
        if outcome is Outcome.WRONG_CODE and left == 0:
            outcome_text = MESSAGES[Outcome.LOCKED]
        else:
            outcome_text = MESSAGES[outcome]
        message = outcome_text.format(left=left, limit=self.policy.lockout_threshold)
        return VerifyResult(outcome, failures, left, message)
