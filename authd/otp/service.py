"""The OTP center's logic: enrollment, registrations at institutions, the shared failure
counter and what each institution may see; its rows are in ``repository.py``.

Every method takes an open transaction, so callers can compose several steps into one
all-or-nothing change (e.g. HID provisioning enrolls and registers in one transaction).
A device's row is locked before its counter is read (``repository.find(..., lock=True)``), so
the lockout is exact across threads, processes and nodes.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from authd import validate
from authd.audit import AuditLog
from authd.audit.log import AuditRow
from authd.context import SYSTEM, Caller, Role
from authd.otp import repository as repo
from authd.otp.keys import METHOD, Keyed, Stored, VerificationKeys, reused
from authd.otp.repository import Device
from authd.otp.signers import SignerTrust
from authd.secrets import SecretBox
from authd.storage import Tx
from authd.storage.database import Row
from devices.errors import AlreadyPresent, AuthdError, BadRequest, NoSuchObject, WrongState
from devices.otp import rules, seedfile
from devices.otp.codes import Algorithm
from devices.otp.rules import Kind, Outcome, Params, Policy, State
from devices.policy import corporate

__all__ = ["Device", "Enrolled", "Job", "OtpService", "VerifyResult"]

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

# The one answer for a serial the caller's institution may not see: unknown, or registered
# only at other institutions (no existence oracle, DESIGN.md).
NOT_REGISTERED = "OTP device {serial} is not registered at {institution}"
# The one answer to a failed online registration, whatever the reason: unknown serial, wrong
# code, a code of another length, a replayed code, or a device that is not active.
REGISTRATION_REFUSED = ("online registration of OTP device {serial} refused: the code does not "
                        "prove possession of an active OTP device with this serial. Type the "
                        "code the device shows now; a locked, lost or replaced device is "
                        "registered only at a branch")


# One verification for the engine: serial, code, caller, and its idempotency key (or None).
Job = tuple[str, str, Caller, Keyed | None]


@dataclass(frozen=True)
class VerifyResult:
    outcome: Outcome
    failures: int
    attempts_left: int
    message: str
    replayed: bool = False  # the stored answer of a verification sent again with its key



NOT_REGISTERED_RESULT = VerifyResult(Outcome.NOT_REGISTERED, 0, 0,
                                     MESSAGES[Outcome.NOT_REGISTERED])


@dataclass(frozen=True)
class Enrolled:
    device: Device
    generated_seed: bytes | None
    provisioning_uri: str


def seed_aad(serial: str) -> bytes:
    """What a device's sealed seed is bound to."""
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


def _enrolled_already(records: list[seedfile.SeedRecord]) -> AlreadyPresent:
    listed = ", ".join(f"{r.serial} (key package {r.package})" for r in records[:20])
    if len(records) > 20:
        listed += f" and {len(records) - 20} more"
    return AlreadyPresent(f"PSKC file refused, nothing was imported: {len(records)} serial(s) "
                          f"of the file are enrolled already: {listed}",
                          reason="PSKC_SERIAL_ENROLLED",
                          metadata={"packages": ",".join(str(r.package) for r in records[:100]),
                                    "refused": len(records)})


class OtpService:
    def __init__(self, secrets: SecretBox, audit: AuditLog, policy: Policy,
                 clock: Callable[[], float] = time.time, *,
                 pskc_signers: dict[str, str] | None = None,
                 pskc_signed_only: bool = False,
                 pskc_trust: SignerTrust | None = None,
                 keys: VerificationKeys | None = None) -> None:
        self.secrets = secrets
        self.keys = keys  # the verifications' idempotency keys (None: keys are not looked at)
        self.pskc_signers = pskc_signers or {}  # manufacturer -> PEM certificate
        # whether a signer certificate counts now (validity, chain, revocation)
        self.pskc_trust = pskc_trust or SignerTrust(self.pskc_signers, [])
        self.pskc_signed_only = pskc_signed_only
        self.audit = audit
        self.policy = policy
        self.clock = clock
        self._messages: dict[tuple[Outcome, int], str] = {}

    # ------------------------------------------------------------------ reading

    def _find(self, tx: Tx, serial: str, *, lock: bool) -> Device | None:
        return repo.find(tx, serial, lock=lock)

    def _load(self, tx: Tx, serial: str, *, lock: bool) -> Device:
        device = self._find(tx, serial, lock=lock)
        if device is None:
            raise NoSuchObject(f"no OTP device with serial {serial}")
        return device

    def _registered(self, tx: Tx, serial: str, institution: str, *, lock: bool) -> Device:
        """The device when it is registered at ``institution``; otherwise the same NoSuchObject
        whether the serial is unknown or registered only elsewhere."""
        device = self._find(tx, rules.check_serial(serial), lock=lock)
        if device is None or not device.registered_at(institution):
            raise NoSuchObject(NOT_REGISTERED.format(serial=serial, institution=institution))
        return device

    def view(self, tx: Tx, device: Device, caller: Caller) -> Device:
        """The device as ``caller`` may see it: an institution sees its own registration only,
        the issuer only when it is the issuer, and the replacing serial only when that device
        is registered there too. The shared failure total is the customer's device state and
        stays. Operations (admin role) see every registration, but a customer reference only
        of their own institution: it belongs to the institution that gave it."""
        here = caller.institution
        if caller.role is Role.ADMIN:
            return dataclasses.replace(device, registrations=tuple(
                r if r.institution == here else dataclasses.replace(r, customer_id="")
                for r in device.registrations))
        replaced_by = device.replaced_by
        if replaced_by and not self.is_registered(tx, replaced_by, here):
            replaced_by = None
        return dataclasses.replace(
            device, registrations=tuple(r for r in device.registrations if r.institution == here),
            issuer=device.issuer if device.issuer == here else "", replaced_by=replaced_by)

    def _seen(self, tx: Tx, serial: str, caller: Caller) -> Device:
        return self.view(tx, self._load(tx, serial, lock=False), caller)

    def status(self, tx: Tx, serial: str, caller: Caller) -> Device:
        """A registered institution's view of the device; operations see every device."""
        if caller.role is Role.ADMIN:
            return self.view(tx, self._load(tx, rules.check_serial(serial), lock=False),
                             caller)
        return self.view(tx, self._registered(tx, serial, caller.institution, lock=False),
                         caller)

    def is_registered(self, tx: Tx, serial: str, institution: str) -> bool:
        return repo.is_registered(tx, serial, institution)

    def attempts_left(self, failures: int) -> int:
        return max(0, self.policy.lockout_threshold - failures)

    # ------------------------------------------------------------------ lifecycle

    def enroll(self, tx: Tx, *, serial: str, seed: bytes | None, kind: str | Kind,
               digits: int = 6, period: int = 60, algorithm: str | Algorithm = "SHA1",
               counter: int = 0, warranty_until: float = 0.0, caller: Caller,
               customer_id: str, channel: str = "branch") -> Enrolled:
        """Enroll a device and register it at the caller's institution (its issuer) for the
        institution's customer ``customer_id``."""
        validate.customer_ref(customer_id)
        return self._enroll(tx, serial=serial, seed=seed, kind=kind, digits=digits,
                            period=period, algorithm=algorithm, counter=counter,
                            warranty_until=warranty_until, caller=caller,
                            customer_id=customer_id, channel=channel)

    def _enroll(self, tx: Tx, *, serial: str, seed: bytes | None, kind: str | Kind,
                digits: int, period: int, algorithm: str | Algorithm, counter: int,
                warranty_until: float, caller: Caller, customer_id: str,
                channel: str) -> Enrolled:
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
        validate.bounded_int(counter, "counter")
        validate.finite(warranty_until, "warranty_until", minimum=0)
        if repo.exists(tx, serial):
            raise AlreadyPresent(f"OTP device {serial} is enrolled already")
        now = self.clock()
        last = counter - 1 if params.kind is Kind.HOTP else -1
        repo.insert_device(tx, serial=serial, params=params,
                           sealed_seed=self.secrets.seal(seed, seed_aad(serial)), last=last,
                           issuer=caller.institution, warranty_until=warranty_until, now=now)
        repo.add_registration(tx, serial, caller.institution, channel, customer_id, now)
        self.audit.record(tx, action="otp.enroll", target=serial, outcome="enrolled",
                          caller=caller, customer=customer_id or None,
                          detail={"kind": params.kind.value,
                                                 "digits": params.digits,
                                                 "seed_source": "generated" if generated
                                                 else "given"})
        uri = provisioning_uri(serial, seed, params, caller.institution, counter)
        return Enrolled(self._seen(tx, serial, caller), generated, uri if generated else "")

    def read_seed_file(self, data: bytes, *, key: bytes | None,
                       password: str | None) -> seedfile.SeedFile:
        """Decrypt and check a manufacturer's PSKC file (no transaction: PBKDF2 and the XML
        take CPU time the store's write lock must not wait for)."""
        return seedfile.read(data, now=self.clock(), key=key, password=password,
                             signers=self.pskc_signers, signed_only=self.pskc_signed_only,
                             vouch=self.pskc_trust.vouch)

    def import_devices(self, tx: Tx, *, seeds: seedfile.SeedFile, caller: Caller,
                       operator: str, dry_run: bool) -> None:
        """Enroll every device of a checked seed file, or none: the caller's institution is
        their issuer, they are registered nowhere (a branch registers each for its
        customer). A serial enrolled already refuses the file. ``dry_run``: the same checks,
        nothing written."""
        records = seeds.records
        taken = repo.enrolled(tx, [r.serial for r in records])
        if taken:
            raise _enrolled_already([r for r in records if r.serial in taken])
        if dry_run:
            return
        now = self.clock()
        for r in records:
            last = r.counter - 1 if r.params.kind is Kind.HOTP else -1
            sealed = self.secrets.seal(r.seed, seed_aad(r.serial))
            if not repo.insert_device_if_absent(
                    tx, serial=r.serial, params=r.params, sealed_seed=sealed, last=last,
                    drift=r.drift, issuer=caller.institution, warranty_until=r.expires,
                    now=now):
                raise _enrolled_already([r])  # enrolled meanwhile by another transaction
            self.audit.record(tx, action="otp.import", target=r.serial, outcome="imported",
                              caller=caller,
                              detail={"operator": operator, "kind": r.params.kind.value,
                                      "digits": r.params.digits, "seed_source": "pskc",
                                      "protection": seeds.protection.value,
                                      "file_sha256": seeds.digest, "key_package": r.package,
                                      "manufacturer": r.manufacturer,
                                      "signature": seeds.signature.value})

    def register(self, tx: Tx, *, serial: str, institution: str, caller: Caller,
                 customer_id: str, master_administrator: bool = False) -> Device:
        """Register the device at ``institution`` at a branch for its customer
        ``customer_id``: the customer is present with the device and an ID (DOMAIN.md §3). An
        unknown serial is NOT_FOUND: registering necessarily tells a teller whether the serial
        exists. A corporate customer's registration of another institution's device needs
        ``master_administrator`` (the teller checked that the master administrator is here)."""
        validate.customer_ref(customer_id)
        device = self._load(tx, rules.check_serial(serial), lock=True)
        if device.state in (State.REPLACED, State.EXPIRED):
            raise WrongState(f"OTP device {serial} was {device.state.value}; "
                                     "register the new device instead")
        if device.registered_at(institution):
            raise AlreadyPresent(f"OTP device {serial} is registered at {institution} already")
        self._corporate_rule(tx, device, institution, customer_id, at_branch=True,
                             master_administrator=master_administrator)
        repo.add_registration(tx, serial, institution, "branch", customer_id, self.clock())
        self.audit.record(tx, action="otp.register", target=serial, outcome="registered",
                          caller=caller, customer=customer_id,
                          detail={"institution": institution, "channel": "branch"})
        return self._seen(tx, serial, caller)

    def register_online(self, tx: Tx, *, serial: str, code: str, caller: Caller,
                        customer_id: str, strong_authentication: bool) -> Device | None:
        """Online registration (DOMAIN.md §3): the institution asserts the customer's strong
        login, and the customer proves possession by typing the device's current code.

        The code is checked under the device's row lock like a verification: a right code
        resets the shared counter and cannot be used again; a wrong one counts on the shared
        cross-institution counter (the 10th locks the device everywhere). Such a failure has
        no institution's share (``failures_here`` counts failures at a registration); the
        center's audit record of it names the institution. Returns None when the proof fails
        for any reason (unknown serial, wrong, replayed or other-length code, a device that is
        not active): the caller then answers REGISTRATION_REFUSED, the same in every case.
        Raises only before it writes."""
        validate.customer_ref(customer_id)
        if not strong_authentication:
            raise WrongState("online registration needs a login with a certificate or "
                                     "another strong means; otherwise register at a branch")
        institution = caller.institution
        device = self._find(tx, rules.check_serial(serial), lock=True)
        if device is not None and device.registered_at(institution):
            raise AlreadyPresent(f"OTP device {serial} is registered at {institution} already")
        # Before the code is tried: a corporate customer registers online only the
        # institution's own devices, and an unknown serial gets the same answer as another
        # institution's device (it tells nothing the institution does not know).
        self._corporate_rule(tx, device, institution, customer_id, at_branch=False,
                             master_administrator=False)
        if device is None or not self._prove(tx, device, code, caller):
            self.audit.record(tx, action="otp.register", target=serial, outcome="refused",
                              caller=caller, detail={"channel": "online"})
            return None
        repo.add_registration(tx, serial, institution, "online", customer_id, self.clock())
        self.audit.record(tx, action="otp.register", target=serial, outcome="registered",
                          caller=caller, customer=customer_id,
                          detail={"institution": institution, "channel": "online",
                                  "proof": "otp"})
        return self._seen(tx, serial, caller)

    def _corporate_rule(self, tx: Tx, device: Device | None, institution: str,
                        customer_id: str, *, at_branch: bool,
                        master_administrator: bool) -> None:
        """The corporate master rule (DOMAIN.md §3) on a registration: raises WrongState
        before anything is written when the customer is corporate at ``institution`` and the
        device is another institution's (or, online, not known as this institution's)."""
        from authd.policy import repository as policy_repo

        policy_repo.serialize_customer(tx, institution, customer_id)
        found = policy_repo.customer(tx, institution, customer_id, lock=False)
        issued_here = device is not None and device.issuer == institution
        why = corporate.registration_refusal(found.kind if found is not None else None,
                                             issued_here, at_branch=at_branch,
                                             master_administrator=master_administrator)
        if why is not None:
            raise WrongState(why, reason="CORPORATE_MASTER_RULE",
                             metadata={"channel": "branch" if at_branch else "online"})

    def _prove(self, tx: Tx, device: Device, code: str, caller: Caller) -> bool:
        """Whether ``code`` is a current code of ``device`` (an online registration's proof)."""
        if device.state is not State.ACTIVE or len(code) != device.params.digits:
            return False  # refused without evaluating the code, nothing counted
        seed = self.secrets.open(device.sealed_seed, seed_aad(device.serial))
        decision = rules.verify(self._rule_state(device), seed, code, self.clock(),
                                self.policy)
        after = decision.device
        if decision.outcome is Outcome.ACCEPTED:
            self._record_accepted(tx, device.serial, after.last, device.failures)
            return True
        if decision.outcome is Outcome.WRONG_CODE:
            self._record_wrong(tx, device.serial, after, None)
            locked_now = after.state is State.LOCKED
            detail: dict[str, object] = {"institution": caller.institution,
                                         "channel": "online_registration",
                                         "failures": after.failures}
            if locked_now:
                detail["locked_now"] = True
            # Attributed to the center: the caller's own audit shows the same refusal for an
            # unknown serial (no existence oracle through the audit trail).
            self.audit.record(tx, action="otp.failure", target=device.serial,
                              outcome="wrong_code", caller=SYSTEM, detail=detail)
        return False

    def deregister(self, tx: Tx, *, serial: str, institution: str, caller: Caller,
                   operator: str, reason: str) -> Device:
        self._registered(tx, serial, institution, lock=True)
        repo.delete_registration(tx, serial, institution)
        self.audit.record(tx, action="otp.deregister", target=serial, outcome="deregistered",
                          caller=caller, detail={"operator": operator, "reason": reason})
        return self._seen(tx, serial, caller)

    def assign_customer(self, tx: Tx, *, serial: str, caller: Caller, customer_id: str,
                        operator: str) -> Device:
        """Name the customer of the caller's registration made before registrations named
        one; a registration naming one already keeps it."""
        validate.customer_ref(customer_id)
        device = self._registered(tx, serial, caller.institution, lock=True)
        here = next(r for r in device.registrations if r.institution == caller.institution)
        if here.customer_id:
            raise WrongState(f"the registration of OTP device {serial} at {caller.institution} "
                             "names its customer already; deregister and register the device "
                             "again to change it")
        repo.set_customer(tx, serial, caller.institution, customer_id)
        self.audit.record(tx, action="otp.assign_customer", target=serial, outcome="assigned",
                          caller=caller, customer=customer_id, detail={"operator": operator})
        return self._seen(tx, serial, caller)

    def _set_state(self, tx: Tx, serial: str, state: State, failures: int | None = None) -> None:
        repo.set_state(tx, serial, state, self.clock(), failures)

    def unlock(self, tx: Tx, *, serial: str, caller: Caller, operator: str,
               reason: str) -> Device:
        """Clear the lock and the consecutive-failure counter (customer present at a branch)."""
        device = self._registered(tx, serial, caller.institution, lock=True)
        if device.state not in (State.LOCKED, State.ACTIVE):
            raise WrongState(f"OTP device {serial} is {device.state.value}; "
                                     "only a locked or active device can be reset")
        self._set_state(tx, serial, State.ACTIVE, failures=0)
        self.audit.record(tx, action="otp.unlock", target=serial, outcome="unlocked",
                          caller=caller, detail={"operator": operator, "reason": reason,
                                                 "failures_before": device.failures,
                                                 "state_before": device.state.value})
        return self._seen(tx, serial, caller)

    def report_lost(self, tx: Tx, *, serial: str, caller: Caller, reason: str) -> Device:
        device = self._registered(tx, serial, caller.institution, lock=True)
        if device.state not in (State.ACTIVE, State.LOCKED):
            raise WrongState(f"OTP device {serial} is {device.state.value} already")
        self._set_state(tx, serial, State.LOST)
        self.audit.record(tx, action="otp.report_lost", target=serial, outcome="reported_lost",
                          caller=caller, detail={"reason": reason,
                                                 "state_before": device.state.value})
        return self._seen(tx, serial, caller)

    def withdraw_loss_report(self, tx: Tx, *, serial: str, caller: Caller, operator: str,
                             reason: str) -> Device:
        device = self._registered(tx, serial, caller.institution, lock=True)
        if device.state is not State.LOST:
            raise WrongState(f"OTP device {serial} is not reported lost")
        back = (State.LOCKED if device.failures >= self.policy.lockout_threshold
                else State.ACTIVE)
        self._set_state(tx, serial, back)
        self.audit.record(tx, action="otp.withdraw_loss_report", target=serial,
                          outcome=back.value, caller=caller,
                          detail={"operator": operator, "reason": reason})
        return self._seen(tx, serial, caller)

    def replace(self, tx: Tx, *, old_serial: str, new_serial: str, warranty_expired: bool,
                seed: bytes | None, kind: str | Kind | None, digits: int | None,
                period: int | None, algorithm: str | Algorithm | None, counter: int,
                caller: Caller, operator: str) -> tuple[Device, Enrolled]:
        """Replace a device. A reissue carries every registration over, each with its
        institution's customer reference; after a warranty expiry the new device is registered
        only here, for the same customer (DOMAIN.md §3)."""
        old = self._registered(tx, old_serial, caller.institution, lock=True)
        here = next(r for r in old.registrations if r.institution == caller.institution)
        if old.state in (State.REPLACED, State.EXPIRED):
            raise WrongState(f"OTP device {old_serial} was {old.state.value} already")
        p = old.params
        # The new device keeps the old one's customer here (none for a registration made
        # before there were customer references).
        enrolled = self._enroll(
            tx, serial=new_serial, seed=seed, kind=kind or p.kind, digits=digits or p.digits,
            period=period or p.period, algorithm=algorithm or p.algorithm, counter=counter,
            warranty_until=0.0, caller=caller, customer_id=here.customer_id, channel="branch")
        if not warranty_expired:
            now = self.clock()
            for reg in old.registrations:
                if reg.institution != caller.institution:
                    repo.add_registration(tx, new_serial, reg.institution, reg.channel,
                                          reg.customer_id, now)
        state = State.EXPIRED if warranty_expired else State.REPLACED
        repo.set_replaced(tx, old_serial, state, new_serial, self.clock())
        self.audit.record(tx, action="otp.replace", target=old_serial, outcome=state.value,
                          caller=caller, detail={"operator": operator, "new_serial": new_serial,
                                                 "carried_over": not warranty_expired})
        new = self._seen(tx, new_serial, caller)
        return self._seen(tx, old_serial, caller), Enrolled(
            new, enrolled.generated_seed, enrolled.provisioning_uri)

    def resync(self, tx: Tx, *, serial: str, first: str, second: str, caller: Caller,
               operator: str) -> Device:
        device = self._registered(tx, serial, caller.institution, lock=True)
        if device.state is not State.ACTIVE:
            raise WrongState(f"OTP device {serial} is {device.state.value}; "
                                     "only an active device can be resynchronised")
        rules.check_code(first, device.params.digits)
        rules.check_code(second, device.params.digits)
        seed = self.secrets.open(device.sealed_seed, seed_aad(serial))
        after = rules.resync(self._rule_state(device), seed, first, second, self.clock(),
                             self.policy)
        if after is None:
            self.audit.record(tx, action="otp.resync", target=serial, outcome="not_found",
                              caller=caller, detail={"operator": operator})
            raise WrongState("the two codes are not consecutive codes of this device "
                                     "within the resync window")
        repo.set_position(tx, serial, after.last, after.drift, self.clock())
        self.audit.record(tx, action="otp.resync", target=serial, outcome="resynced",
                          caller=caller, detail={"operator": operator})
        return self._seen(tx, serial, caller)

    # ------------------------------------------------------------------ verification

    @staticmethod
    def _rule_state(device: Device) -> rules.DeviceState:
        return rules.DeviceState(device.serial, device.params, device.state, device.failures,
                                 device.last, device.drift)

    def verify(self, tx: Tx, *, serial: str, code: str, caller: Caller,
               read: list[Row] | None = None) -> VerifyResult:
        """One verification (see ``verify_many``); raises the error its caller gets.

        ``read``: the rows of ``repository.verification_statement`` for this serial and the
        caller's institution, run earlier in ``tx`` (the device is locked since), so that a
        caller sending its own reads with it spends no second round trip."""
        jobs: list[Job] = [(serial, code, caller, None)]
        if read is None:
            (result,) = self.verify_many(tx, jobs)
        else:
            (result,) = self._decide(tx, jobs, *repo.verification_lookup(read, serial,
                                                                         caller.institution))
        if isinstance(result, AuthdError):
            raise result
        return result

    def verify_many(self, tx: Tx, jobs: Sequence[Job]) -> list[VerifyResult | AuthdError]:
        """Verifications in one transaction, each as if alone, one after another in their
        order (two of one device see each other's change); every one audited.

        The devices are read in one statement under their row locks (``FOR UPDATE`` on
        PostgreSQL, taken in serial order; SQLite's write transaction holds the file), the
        rules run in memory, and the changed counters are written with one statement per table
        at the end. A job whose request does not fit its device (a code of another length) gets
        its error and changes nothing; an error of any other kind aborts the whole transaction
        (the engine then commits the jobs one by one). An unknown serial and a device not
        registered at the caller's institution get the same NOT_REGISTERED answer, without
        counters, and write nothing.

        A job with an idempotency key (``authd/otp/keys.py``) whose key is stored gets the
        stored answer and changes nothing; the key of one evaluated is written with its
        answer, in ``tx``. Jobs sharing a key are evaluated in turn: the batch goes in rounds,
        each up to the next job whose key the round holds already."""
        if self.keys is None or all(job[3] is None for job in jobs):
            return self._decide(tx, jobs, *repo.lock_for_verifications(
                tx, sorted({job[0] for job in jobs})))
        out: list[VerifyResult | AuthdError] = []
        start = 0
        while start < len(jobs):
            held: set[str] = set()
            end = start
            while end < len(jobs):
                key = jobs[end][3]
                if key is not None:
                    if key.row in held:
                        break
                    held.add(key.row)
                end += 1
            out.extend(self._keyed_round(tx, self.keys, jobs[start:end]))
            start = end
        return out

    def _keyed_round(self, tx: Tx, keys: VerificationKeys, jobs: Sequence[Job]
                     ) -> list[VerifyResult | AuthdError]:
        """``verify_many`` of jobs no two of which share a key."""
        locked = repo.lock_for_verifications(tx, sorted({job[0] for job in jobs}))
        # Read after the devices' locks: a key another transaction wrote for one of these
        # devices has committed by now.
        stored = keys.look(tx, [job[3].row for job in jobs if job[3] is not None])
        new = [(job[3], job[2].institution) for job in jobs
               if job[3] is not None and job[3].row not in stored]
        if new:
            # Taken meanwhile by a transaction holding other devices: its key, once committed.
            taken = keys.claim(tx, [k for k, _ in new], [i for _, i in new])
            if taken:
                stored.update({row: METHOD for row in taken})
                stored.update(keys.look(tx, sorted(taken)))
        out: list[VerifyResult | AuthdError | None] = [None] * len(jobs)
        evaluated: list[int] = []
        for index, job in enumerate(jobs):
            key = job[3]
            first = stored.get(key.row) if key is not None else None
            if first is None:
                evaluated.append(index)
            elif isinstance(first, Stored) and key is not None and first.digest == key.digest:
                out[index] = VerifyResult(first.outcome, first.failures, first.attempts_left,
                                          self._message(first.outcome, first.attempts_left),
                                          replayed=True)
            else:
                out[index] = reused(first if isinstance(first, str) else "another serial or "
                                    "code")
        results = self._decide(tx, [jobs[i] for i in evaluated], *locked)
        answers: list[tuple[Keyed, Outcome, int, int]] = []
        refused: list[Keyed] = []
        for index, result in zip(evaluated, results, strict=True):
            out[index] = result
            key = jobs[index][3]
            if key is None:
                continue
            if isinstance(result, VerifyResult):
                answers.append((key, result.outcome, result.failures, result.attempts_left))
            else:
                refused.append(key)
        keys.answer(tx, answers, refused)
        return out  # type: ignore[return-value]  # every slot is set now

    def _decide(self, tx: Tx, jobs: Sequence[Job],
                devices: dict[str, rules.DeviceState], sealed: dict[str, bytes],
                registered: set[tuple[str, str]]) -> list[VerifyResult | AuthdError]:
        """``verify_many`` on devices already read and locked in ``tx``."""
        out: list[VerifyResult | AuthdError] = []
        seeds: dict[str, bytes] = {}  # opened for this transaction only
        dirty: set[str] = set()
        resets: set[str] = set()  # devices whose shares go back to 0 (then the increments)
        shares: dict[tuple[str, str], int] = {}
        audits: list[AuditRow] = []  # written together after the counters
        now = self.clock()
        for serial, code, caller, _ in jobs:
            device = devices.get(serial)
            if device is None or (serial, caller.institution) not in registered:
                out.append(NOT_REGISTERED_RESULT)
                continue
            refused = rules.refusal(device.state)
            if refused is not None:
                out.append(self._answer(tx, audits, serial, refused, device.failures, caller))
                continue
            try:
                rules.check_code(code, device.params.digits)
            except AuthdError as exc:
                out.append(exc)
                continue
            seed = seeds.get(serial)
            if seed is None:
                seed = seeds[serial] = self.secrets.open(sealed[serial], seed_aad(serial))
            decision = rules.verify(device, seed, code, now, self.policy)
            after = decision.device
            if decision.outcome is Outcome.ACCEPTED:
                if device.failures:
                    resets.add(serial)
                    for key in [k for k in shares if k[0] == serial]:
                        del shares[key]
                devices[serial] = after
                dirty.add(serial)
            elif decision.outcome is Outcome.WRONG_CODE:
                key = (serial, caller.institution)
                shares[key] = shares.get(key, 0) + 1
                devices[serial] = after
                dirty.add(serial)
            out.append(self._answer(tx, audits, serial, decision.outcome, after.failures,
                                    caller, locked_now=after.state is State.LOCKED))
        seeds.clear()
        repo.record_verifications(tx, [devices[serial] for serial in sorted(dirty)],
                                  sorted(resets), sorted(shares.items()), now)
        self.audit.insert(tx, audits)
        return out


    def _record_accepted(self, tx: Tx, serial: str, last: int, failures_before: int) -> None:
        repo.record_accepted(tx, serial, last, failures_before, self.clock())

    def _record_wrong(self, tx: Tx, serial: str, after: rules.DeviceState,
                      institution: str | None) -> None:
        """One more failure on the shared counter; ``institution``'s share when it has a
        registration (None: an online registration's failed proof has no share)."""
        repo.record_wrong(tx, serial, after.failures, after.state, institution, self.clock())

    def _answer(self, tx: Tx, audits: list[AuditRow], serial: str, outcome: Outcome,
                failures: int, caller: Caller, locked_now: bool = False) -> VerifyResult:
        """The verification's answer; its audit record goes to ``audits``."""
        detail: dict[str, object] = ({"failures": failures, "locked_now": True} if locked_now
                                     else {"failures": failures})
        audits.append(self.audit.row(tx, action="otp.verify", target=serial,
                                     outcome=outcome.value, caller=caller, detail=detail))
        left = self.attempts_left(failures)
        return VerifyResult(outcome, failures, left, self._message(outcome, left))

    def _message(self, outcome: Outcome, left: int) -> str:
        message = self._messages.get((outcome, left))
        if message is None:
            text = MESSAGES[Outcome.LOCKED if outcome is Outcome.WRONG_CODE and left == 0
                            else outcome]
            message = text.format(left=left, limit=self.policy.lockout_threshold)
            if len(self._messages) < 1024:
                self._messages[(outcome, left)] = message
        return message
