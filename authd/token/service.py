"""Token operations for branch terminals (blocking; servicers run them off the event loop)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from authd import validate
from authd.app import App
from authd.context import Caller
from authd.customer.feature import registrations_of
from authd.customer.models import BranchRegistration, Exemption, MediumKind
from authd.customer.registrations import BranchRegistrations
from authd.signing import SignatureGuard
from authd.storage import Tx
from authd.token import repository as repo
from authd.token.errors import PinBlocked, WrongPin, token_errors
from authd.token.sessions import SessionTable, TokenLogin
from authd.token.settings import TokenSettings
from devices.errors import BadRequest, NoSuchObject, WrongState
from devices.token import CertificateInfo, KeyInfo, KeySpec, SignAlgorithm, TokenDevice
from devices.token.token import DeleteScope, Signature
from drivers.pkcs11 import (
    ModuleSet,
    Pkcs11Module,
    Pkcs11TokenSession,
    TokenAbsent,
    TokenInfo,
    TokenIOError,
    TokenWatcher,
)

log = logging.getLogger(__name__)
# The public data object (CKA_APPLICATION) that recognises a token's initialization.
MARKER = "authd initialization"

MAX_PIN = 64
INLINE_MAX_DATA = 4096  # bytes hashed on the event loop at most (~5 µs of SHA-256)
MAX_TEXT = 128


def _text(value: str, what: str, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise BadRequest(f"{what} is required")
    if len(value) > MAX_TEXT or not value.isprintable():
        raise BadRequest(f"{what} must be at most {MAX_TEXT} printable characters")
    return value


def _serial(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 32 or not value.isprintable():
        raise BadRequest("token_serial must be 1..32 printable characters")
    return value


def _pin(value: str, what: str = "pin") -> str:
    return validate.pin(value, what, length=(1, MAX_PIN))


@dataclass(frozen=True)
class SignJob:
    """One signature a stream asks for."""

    handle: str
    key_id: bytes
    data: bytes | None
    digest: bytes | None
    algorithm: SignAlgorithm | None
    token_hashes: bool


def _same_run(a: SignJob, b: SignJob) -> bool:
    """Whether two signatures go on one session together (same login, key and mechanism)."""
    return (a.handle == b.handle and a.key_id == b.key_id and a.algorithm == b.algorithm
            and a.token_hashes == b.token_hashes)


@dataclass(frozen=True)
class LoginResult:
    login: TokenLogin
    token: TokenInfo
    expires_in: float


class TokenService:
    def __init__(self, app: App, settings: TokenSettings, modules: ModuleSet) -> None:
        self.app = app
        self.settings = settings
        self.modules = modules
        self.sessions = SessionTable(settings.session_idle_seconds, settings.session_max_seconds)
        self.watcher = TokenWatcher(modules, settings.poll_interval)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        # Installed by the certificate feature: checks the key's certificate before it signs.
        self.guard: SignatureGuard | None = None
        # Set when the native front end may be lent logins (authd/token/lending.py): a login
        # keeps its PIN until it is lent. ``on_change`` is told before a login changes its
        # token's objects (what a lent login signs with).
        self.lends = False
        self.on_change: Callable[[TokenLogin], None] | None = None

    @classmethod
    def create(cls, app: App, settings: TokenSettings) -> TokenService:
        modules: list[Pkcs11Module] = []
        for m in settings.modules or ():
            try:
                modules.append(
                    Pkcs11Module(
                        m.path,
                        rescan=m.rescan,
                        rescan_interval=settings.rescan_interval,
                        ignore_labels=settings.ignore_labels,
                    )
                )
            except (TokenIOError, TokenAbsent) as exc:
                log.warning("PKCS#11 module not loaded: %s", exc)
        return cls(app, settings, ModuleSet(modules))

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.watcher.start()
        self._sweeper = threading.Thread(
            target=self._sweep_loop, name="token-session-sweeper", daemon=True
        )
        self._sweeper.start()

    def _sweep_loop(self) -> None:
        interval = max(0.2, min(5.0, self.settings.session_idle_seconds / 4))
        while not self._stop.wait(interval):
            try:
                for ended in self.sessions.sweep():
                    log.info("token session ended", extra={"fields": {"token": ended.serial}})
            except Exception:
                log.exception("sweeping token sessions failed")

    def close(self) -> None:
        self._stop.set()
        self.watcher.stop()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.sessions.clear()
        self.modules.close()

    # ---------------------------------------------------------------- tokens
    def list_tokens(self) -> list[TokenInfo]:
        return self.modules.tokens(fresh=True)

    def _find(self, serial: str) -> tuple[Pkcs11Module, TokenInfo]:
        with token_errors():
            return self.modules.find(_serial(serial))

    # ----------------------------------------------------------------- login
    def login(self, caller: Caller, serial: str, pin: str) -> LoginResult:
        serial = _serial(serial)
        pin = _pin(pin)
        module, info = self._find(serial)
        self.sessions.sweep()
        holder = self.sessions.holder(serial)
        if holder is not None:
            if not holder.owned_by(caller):
                raise WrongState(f"token {info.label!r} is in use by another session")
            self.sessions.remove(holder.handle, caller)
        if info.pin_state.locked:
            self._audit_login(serial, "locked", {})
            raise PinBlocked(
                f"token {info.label!r}: the user PIN is locked; unblock it at a branch"
            )
        limit = self.settings.pin_max_failures
        before = 0
        if limit:
            self._clear_if_reinitialized(serial, module)
            reserved = self.app.db.run(lambda tx: repo.reserve_pin_attempt(tx, serial, limit))
            if reserved is None:
                self._audit_login(serial, "locked", {"limit": limit})
                raise PinBlocked(
                    f"token {info.label!r}: the PIN is locked after {limit} wrong "
                    "entries; unblock it at a branch"
                )
            before = reserved
        try:
            with token_errors():
                token = module.login(serial, pin)
        except WrongPin as exc:
            left = exc.attempts_left
            if limit:
                ours = limit - (before + 1)
                left = ours if left is None else min(left, ours)
            self._audit_login(serial, "wrong_pin", {"attempts_left": left})
            if limit:
                self._mark_initialization(serial, module)
            if left == 0:
                raise PinBlocked(
                    f"token {info.label!r}: wrong PIN; the PIN is now locked"
                ) from None
            tail = f"{left} attempt(s) left" if left is not None else "attempts left unknown"
            raise WrongPin(f"token {info.label!r}: wrong PIN, {tail}", left) from None
        except PinBlocked:
            self._audit_login(serial, "locked", {})
            raise
        except BaseException:
            if limit:  # the PIN was not evaluated: give the attempt back
                self.app.db.run(lambda tx: repo.release_pin_attempt(tx, serial))
            raise
        if limit:
            self.app.db.run(lambda tx: repo.reset_pin_failures(tx, serial))
        self._audit_login(serial, "ok", {})
        login = self.sessions.add(caller, module, serial, token.label)
        if self.lends and self.guard is None:  # a check before signing stays the daemon's
            login.keep_pin(pin)
        return LoginResult(login, token, self.sessions.expires_in(login))

    def _audit_login(self, serial: str, outcome: str, detail: dict[str, object]) -> None:
        self.app.db.run(
            lambda tx: self.app.audit.record(
                tx, action="token.login", target=f"token:{serial}", outcome=outcome, detail=detail
            )
        )

    def logout(self, caller: Caller, handle: str) -> None:
        login = self.sessions.remove(handle, caller)
        self.app.db.run(
            lambda tx: self.app.audit.record(
                tx, action="token.logout", target=f"token:{login.serial}", outcome="ok"
            )
        )

    def pin_attempts_left(self, serial: str, info: TokenInfo) -> int | None:
        left = info.pin_state.attempts_remaining
        limit = self.settings.pin_max_failures
        if limit:
            failures = self.app.db.run(lambda tx: repo.pin_failures(tx, serial), write=False)
            ours = max(0, limit - failures)
            left = ours if left is None else min(left, ours)
        return left

    def unblock_pin(
        self, caller: Caller, serial: str, so_pin: str, new_pin: str, operator: str, reason: str
    ) -> TokenInfo:
        serial = _serial(serial)
        so_pin, new_pin = _pin(so_pin, "so_pin"), _pin(new_pin, "new_pin")
        operator, reason = _text(operator, "operator"), _text(reason, "reason")
        module, info = self._find(serial)
        if self.sessions.holder(serial) is not None:
            raise WrongState("log the token's session out before unblocking its PIN")
        # SoftHSM2 (and many tokens) never lock the SO PIN: count wrong ones as for the user
        # PIN, reserving the attempt before the SO PIN reaches the token.
        limit = self.settings.pin_max_failures
        before = 0
        if limit:
            self._clear_if_reinitialized(serial, module)
            reserved = self.app.db.run(
                lambda tx: repo.reserve_pin_attempt(tx, serial, limit, repo.SO_PIN))
            if reserved is None:
                self._audit(serial, "token.unblock_pin", "so_pin_locked",
                            {"operator": operator, "reason": reason, "limit": limit})
                raise PinBlocked(
                    f"token {info.label!r}: the SO PIN is locked after {limit} wrong entries; "
                    "the token must be re-initialized (reissued), or the node's administrator "
                    "clears the count once the SO PIN is known (authd token so-pin reset)")
            before = reserved
        try:
            with token_errors():
                token = module.unblock_pin(serial, so_pin, new_pin)
        except WrongPin as exc:
            left = exc.attempts_left
            if limit:
                ours = limit - (before + 1)
                left = ours if left is None else min(left, ours)
            self._audit(
                serial,
                "token.unblock_pin",
                "wrong_so_pin",
                {"operator": operator, "reason": reason, "attempts_left": left},
            )
            if limit:
                self._mark_initialization(serial, module)
            if left == 0:
                raise PinBlocked(
                    f"token {info.label!r}: wrong SO PIN; the SO PIN is now locked") from None
            tail = f"{left} attempt(s) left" if left is not None else "attempts left unknown"
            raise WrongPin(f"token {info.label!r}: wrong SO PIN, {tail}", left) from None
        except PinBlocked:
            self._audit(serial, "token.unblock_pin", "so_pin_locked",
                        {"operator": operator, "reason": reason})
            raise
        except BaseException:
            if limit:  # the SO PIN was not evaluated: give the attempt back
                self.app.db.run(lambda tx: repo.release_pin_attempt(tx, serial, repo.SO_PIN))
            raise

        def done(tx: Tx) -> None:
            repo.reset_pin_failures(tx, serial)
            repo.reset_pin_failures(tx, serial, repo.SO_PIN)
            self.app.audit.record(
                tx,
                action="token.unblock_pin",
                target=f"token:{serial}",
                outcome="ok",
                detail={"operator": operator, "reason": reason},
            )

        self.app.db.run(done)
        return token

    # ------------------------------------------------- re-initialized tokens
    def _mark_initialization(self, serial: str, module: Pkcs11Module) -> None:
        """With a count of wrong PINs of the token begun, record how its current
        initialization is recognised: its label and a public data object put on it once (a
        random value, no secret), which re-initializing the token destroys. The record stays
        while the token keeps this initialization."""
        if self.app.db.run(lambda tx: repo.initialization(tx, serial), write=False):
            return
        try:
            with token_errors():
                label = module.token(serial).label
                marker = module.initialization_marker(serial, MARKER)  # put on it before
                if marker is None:
                    value = secrets.token_bytes(16)
                    marker = value if module.mark_initialization(serial, MARKER, value) \
                        else None
        except TokenAbsent:
            return  # pulled out: marked when its next wrong PIN is counted
        self.app.db.run(lambda tx: repo.record_initialization(tx, serial, label, marker))

    def _clear_if_reinitialized(self, serial: str, module: Pkcs11Module) -> None:
        """Clear the counts of wrong PINs and SO PINs kept for the token's earlier
        initialization when it was initialized again under the same serial (its marker is
        gone, or its label changed): they belong to the old SO PIN and user PIN."""
        def read(tx: Tx) -> tuple[tuple[str, bytes | None] | None, int, int]:
            return (repo.initialization(tx, serial), repo.pin_failures(tx, serial),
                    repo.pin_failures(tx, serial, repo.SO_PIN))

        recorded, failures, so_failures = self.app.db.run(read, write=False)
        if recorded is None:
            return
        label, marker = recorded
        with token_errors():
            now = module.token(serial).label
            found = module.initialization_marker(serial, MARKER) if marker is not None \
                else None
        why = ("label" if now != label else
               "marker" if marker is not None and found != marker else None)
        if why is None:
            return

        def clear(tx: Tx) -> None:
            repo.forget_initialization(tx, serial)
            self.app.audit.record(
                tx, action="token.reinitialized", target=f"token:{serial}",
                outcome="counts_cleared",
                detail={"detected_by": why, "pin_failures_before": failures,
                        "so_pin_failures_before": so_failures})

        self.app.db.run(clear)
        log.info("token %s was initialized again (%s changed): its PIN counts were cleared",
                 serial, why)

    def _audit(self, serial: str, action: str, outcome: str, detail: dict[str, object]) -> None:
        self.app.db.run(
            lambda tx: self.app.audit.record(
                tx, action=action, target=f"token:{serial}", outcome=outcome, detail=detail
            )
        )

    # ------------------------------------------------------------- device ops
    def login_for(self, caller: Caller, handle: str) -> TokenLogin:
        return self.sessions.get(handle, caller)

    def _changing(self, login: TokenLogin) -> TokenLogin:
        """``login`` is about to change its token's objects: its certificates are looked up
        again, and a lent login comes back first."""
        login.certificates.clear()
        if self.on_change is not None:
            self.on_change(login)
        return login

    def device(self, login: TokenLogin) -> TokenDevice:
        return TokenDevice(login.session, max_data=self.settings.max_sign_bytes)

    def public_device(self, serial: str) -> TokenDevice:
        module, info = self._find(serial)
        return TokenDevice(
            Pkcs11TokenSession(module, info.serial, info.label),
            max_data=self.settings.max_sign_bytes,
        )

    def generate_key(
        self, caller: Caller, handle: str, spec: KeySpec, label: str, key_id: bytes | None
    ) -> KeyInfo:
        login = self._changing(self.login_for(caller, handle))
        with token_errors():
            key = self.device(login).generate_key(spec, label, key_id)
        self._audit(
            login.serial,
            "token.generate_key",
            "ok",
            {"key_id": key.key_id.hex(), "spec": spec.value, "label": label},
        )
        return key

    def create_csr(
        self, caller: Caller, handle: str, key_id: bytes, subject: str, pss: bool
    ) -> bytes:
        login = self.login_for(caller, handle)
        with token_errors():
            return self.device(login).create_csr(key_id, subject, pss=pss)

    def import_certificate(
        self, caller: Caller, handle: str, certificate: bytes, label: str | None, replace: bool
    ) -> CertificateInfo:
        login = self._changing(self.login_for(caller, handle))
        with token_errors():
            info = self.device(login).import_certificate(certificate, label=label, replace=replace)
        self._audit(
            login.serial,
            "token.import_certificate",
            "ok",
            {
                "key_id": info.key_id.hex(),
                "subject": info.subject,
                "serial": format(info.serial, "x"),
                "replace": replace,
            },
        )
        return info

    def list_objects(
        self, caller: Caller, handle: str, serial: str
    ) -> tuple[list[KeyInfo], list[CertificateInfo]]:
        device = (
            self.device(self.login_for(caller, handle)) if handle else self.public_device(serial)
        )
        with token_errors():
            return device.list_keys(), device.list_certificates()

    def sign(
        self,
        caller: Caller,
        handle: str,
        key_id: bytes,
        *,
        data: bytes | None,
        digest: bytes | None,
        algorithm: SignAlgorithm | None,
        token_hashes: bool,
    ) -> Signature:
        login = self.login_for(caller, handle)
        if self.guard is not None:
            self.guard.check(self.certificate_of(login, key_id), medium="token",
                             device=login.serial)
        started = time.perf_counter()
        with token_errors():
            signature = self.device(login).sign(
                key_id, data=data, digest=digest, algorithm=algorithm, token_hashes=token_hashes
            )
        login.timed_sign(time.perf_counter() - started)
        return signature

    def certificate_of(self, login: TokenLogin, key_id: bytes) -> bytes | None:
        """The certificate stored next to ``key_id`` on the token (DER), looked up once per
        login."""
        try:
            return login.certificates[key_id]
        except KeyError:
            pass
        with token_errors():
            found = next((c.der for c in self.device(login).list_certificates()
                          if c.key_id == key_id), None)
        login.certificates[key_id] = found
        return found

    def signs_inline(self, handle: str, data: bytes | None, key_id: bytes = b"") -> bool:
        """Whether a Sign on this handle may run on the event loop instead of a worker thread:
        its token's signatures have been taking less than ``inline_sign_us`` (a software token
        such as SoftHSM2 with ECDSA: ~100 µs, less than the hop to a thread and back) and there
        is little data to hash; with a certificate check installed, it must answer from memory.
        A hardware token (milliseconds per signature), RSA on SoftHSM2,
        an unmeasured login and large data always go to a worker thread."""
        if data is not None and len(data) > INLINE_MAX_DATA:
            return False
        return self.signs_fast(handle, key_id)

    def signs_fast(self, handle: str, key_id: bytes = b"") -> bool:
        """Whether this handle's token has been signing in less than ``inline_sign_us`` (and
        the certificate check, if any, answers from memory): its signatures take less than a
        hop to a thread and back, so several are best signed in one go."""
        limit = self.settings.inline_sign_us
        if limit <= 0:
            return False
        login = self.sessions.peek(handle)
        seconds = login.sign_seconds if login is not None else None
        if seconds is None or seconds * 1e6 >= limit or login is None:
            return False
        if self.guard is not None:  # the check must answer from memory (no responder call)
            if key_id not in login.certificates:
                return False
            der = login.certificates[key_id]
            return der is None or self.guard.fresh(der)
        return True

    def sign_many(
        self, caller: Caller, jobs: Sequence[SignJob | Exception]
    ) -> list[Signature | Exception]:
        """Several signatures in one call off the event loop (SignStream's batches), in order.

        An exception in ``jobs`` (a request that could not be read) or raised by a signature
        takes that job's place and ends the batch: a stream ends at its first error, so
        nothing after it is signed. Consecutive jobs on the same handle, key and algorithm are
        signed on one leased session (:meth:`_sign_run`); each one's caller and login are
        still checked as a unary ``sign`` checks them."""
        return self._sign_runs([(caller, job) for job in jobs], first_error_ends=True)

    def sign_each(
        self, calls: Sequence[tuple[Caller, SignJob]]
    ) -> list[Signature | Exception]:
        """Unary signatures of several callers together, each answered on its own: one's
        error takes only its own place. Consecutive ones of the same caller, handle, key and
        algorithm are signed on one leased session."""
        return self._sign_runs(calls, first_error_ends=False)

    def _sign_runs(
        self, calls: Sequence[tuple[Caller, SignJob | Exception]], *, first_error_ends: bool
    ) -> list[Signature | Exception]:
        """Signs ``calls`` in order, a run of consecutive ones of the same caller, handle, key
        and algorithm on one leased session. An error takes its call's place; with
        ``first_error_ends`` nothing after it is signed, else the calls after it are signed."""
        out: list[Signature | Exception] = []
        i = 0
        while i < len(calls):
            caller, job = calls[i]
            if isinstance(job, Exception):
                out.append(job)
                if first_error_ends:
                    break
                i += 1
                continue
            run = [job]
            for other_caller, other in calls[i + 1:]:
                if (other_caller != caller or not isinstance(other, SignJob)
                        or not _same_run(job, other)):
                    break
                run.append(other)
            signed: list[Signature] = []
            try:
                self._sign_run(caller, run, signed)
            except Exception as exc:
                out.extend(signed)
                out.append(exc)
                if first_error_ends:
                    break
                i += len(signed) + 1
                continue
            out.extend(signed)
            i += len(run)
        return out

    def _sign_run(self, caller: Caller, run: Sequence[SignJob], out: list[Signature]) -> None:
        """Signs ``run`` (one handle, key, algorithm) on one leased session, appending each
        signature to ``out``; raises the first job's error once those before it are signed.
        Every job is checked as ``sign`` checks it (the caller owns a live login; the
        certificate check) before the run is signed."""
        login: TokenLogin | None = None
        inputs: list[tuple[bytes | None, bytes | None]] = []
        failed: Exception | None = None
        for job in run:
            try:
                login = self.login_for(caller, job.handle)
                if self.guard is not None:
                    self.guard.check(self.certificate_of(login, job.key_id), medium="token",
                                     device=login.serial)
            except Exception as exc:
                failed = exc
                break
            inputs.append((job.data, job.digest))
        if login is not None and inputs:
            first = run[0]
            signed: list[Signature] = []
            started = time.perf_counter()
            try:
                with token_errors():
                    self.device(login).sign_many(first.key_id, inputs, signed,
                                                 algorithm=first.algorithm,
                                                 token_hashes=first.token_hashes)
            finally:
                if signed:
                    login.timed_sign((time.perf_counter() - started) / len(signed))
                out.extend(signed)
        if failed is not None:
            raise failed

    def verify(
        self,
        caller: Caller,
        handle: str,
        serial: str,
        key_id: bytes,
        signature: bytes,
        *,
        data: bytes | None,
        digest: bytes | None,
        algorithm: SignAlgorithm | None,
    ) -> bool:
        device = (
            self.device(self.login_for(caller, handle)) if handle else self.public_device(serial)
        )
        with token_errors():
            return device.verify(key_id, signature, data=data, digest=digest, algorithm=algorithm)

    def delete(self, caller: Caller, handle: str, key_id: bytes, scope: DeleteScope) -> int:
        login = self._changing(self.login_for(caller, handle))
        with token_errors():
            count = self.device(login).delete(key_id, scope)
        self._audit(
            login.serial,
            "token.delete_objects",
            "ok",
            {"key_id": key_id.hex(), "scope": scope.value, "deleted": count},
        )
        return count

    # ---------------------------------------------------------- registrations
    def _registrations(self) -> BranchRegistrations:
        return registrations_of(self.app)

    def register(
        self,
        caller: Caller,
        handle: str,
        customer_id: str,
        operator: str,
        terminal: str,
        key_id: bytes = b"",
    ) -> BranchRegistration:
        """Register the logged-in token (the customer is at this terminal with it) for the
        institution's customer, at the center; with ``key_id``, the public key of that key
        pair on the token is kept with the registration (the key transfers are signed with)."""
        login = self.login_for(caller, handle)
        public_key = b""
        if key_id:
            with token_errors():
                key = next((k for k in self.device(login).list_keys() if k.key_id == key_id),
                           None)
            if key is None or not key.has_private:
                raise NoSuchObject(f"token {login.serial} holds no key pair {key_id.hex()}")
            public_key = key.public_key_der
        return self._registrations().register(
            caller, MediumKind.HSM_TOKEN, login.serial, customer_id,
            terminal=terminal or caller.subject, operator=operator, public_key=public_key,
        )

    def deregister(
        self, caller: Caller, serial: str, customer_id: str, operator: str, reason: str
    ) -> BranchRegistration:
        return self._registrations().deregister(
            caller, MediumKind.HSM_TOKEN, _serial(serial), customer_id,
            operator=operator, reason=reason,
        )

    def exemption(self, caller: Caller, serial: str, customer_id: str) -> Exemption:
        return self._registrations().exemption(
            caller, MediumKind.HSM_TOKEN, _serial(serial), customer_id
        )
