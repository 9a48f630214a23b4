"""One PKCS#11 module: its tokens, a session pool per token, and user login.

Thread-safe. A :class:`Pkcs11Module` is shared by every caller in the process; all
python-pkcs11 calls run inside :func:`drivers.pkcs11.errors.pkcs11_errors`.

Hot-plug. Modules for real readers report inserted and removed tokens through
``C_GetSlotList``. SoftHSM2 scans its token directory only in ``C_Initialize``, so for such
modules (``rescan="reinitialize"``) the module re-initializes itself when nobody is logged
in and no session is in use: every ``rescan_interval`` when idle, and at once for a lookup
of a serial it does not know, but that forced rescan at most once per ``rescan_interval`` (a
caller asking for unknown serials in a loop would otherwise end every caller's sessions
again and again; lookups in between answer from the last scan). A listing (``refresh``) is
capped alike but never answers from a scan older than itself: within the interval it waits
for the next re-initialization. Because python-pkcs11 keeps one library object per path
and other parts of the process (the daemon's key-encryption-key token) may hold sessions on
it, every module loads a private copy of the shared object: ``dlopen`` gives the copy its own
state, so its ``C_Finalize`` touches nobody else, and it can be initialized for threads
(``CKF_OS_LOCKING_OK``), so calls into it run in parallel: one pooled session per call, no
lock around the module unless the module refuses OS locking.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import TypeVar

import pkcs11
import pkcs11.exceptions as p11e

from drivers.pkcs11.errors import (
    AlreadyLoggedIn,
    NotLoggedIn,
    ObjectMissing,
    PinState,
    TokenAbsent,
    TokenError,
    TokenIOError,
    pkcs11_errors,
)
from drivers.pkcs11.locking import OsLocking

log = logging.getLogger(__name__)
T = TypeVar("T")

CKF_TOKEN_INITIALIZED = 0x0000_0400
CKF_LOGIN_REQUIRED = 0x0000_0004
CKF_PROTECTED_AUTHENTICATION_PATH = 0x0000_0100
MAX_IDLE_SESSIONS = 8
# An explicit rescan waits this long at most for the calls in flight to end (a daemon signing
# without pause may never leave a gap: the rescan is then skipped, as one while logged in).
RESCAN_WAIT_SECONDS = 5.0


@unique
class Rescan(StrEnum):
    """How a module notices tokens that appear after it was initialized."""

    AUTO = "auto"  # reinitialize for SoftHSM2, poll otherwise
    POLL = "poll"  # C_GetSlotList reports plug/unplug by itself
    REINITIALIZE = "reinitialize"  # finalize + initialize a private instance when idle


@dataclass(frozen=True)
class TokenInfo:
    """What a slot's token says about itself (CK_TOKEN_INFO), plus where it is."""

    module: str
    slot_id: int
    label: str
    serial: str
    manufacturer: str
    model: str
    flags: int
    logged_in: bool = False

    @property
    def pin_state(self) -> PinState:
        return PinState.from_flags(self.flags)

    @property
    def login_required(self) -> bool:
        return bool(self.flags & CKF_LOGIN_REQUIRED)

    @property
    def protected_auth_path(self) -> bool:
        return bool(self.flags & CKF_PROTECTED_AUTHENTICATION_PATH)


@dataclass
class PooledSession:
    """A pooled PKCS#11 session and the object handles found through it, and the session
    copies of keys made on it (:meth:`session_copy`)."""

    session: pkcs11.Session
    generation: int
    objects: dict[tuple[int, bytes], pkcs11.Object] = field(default_factory=dict)
    copies: dict[int, pkcs11.Object] = field(default_factory=dict)  # by the token object's handle

    def session_copy(self, obj: pkcs11.Object) -> pkcs11.Object:
        """A session object copy of the token object ``obj`` (C_CopyObject, CKA_TOKEN false),
        made once, living until :meth:`forget_objects`, the session's close or the logout (a
        private session object ends with its login); ``obj`` itself if the module will not
        copy it."""
        handle = int(obj.handle or 0)
        copy = self.copies.get(handle)
        if copy is None:
            try:
                copy = obj.copy({pkcs11.Attribute.TOKEN: False})
            except p11e.PKCS11Error:
                return obj
            self.copies[handle] = copy
        return copy

    def forget_objects(self) -> None:
        """Forget the handles found, and destroy the session copies made."""
        self.objects.clear()
        copies, self.copies = self.copies, {}
        for copy in copies.values():
            try:
                copy.destroy()
            except p11e.PKCS11Error:  # gone already (a logout ends private session objects)
                pass


@dataclass
class _TokenState:
    token: pkcs11.Token
    label: str
    idle: list[PooledSession] = field(default_factory=list)
    login: pkcs11.Session | None = None
    generation: int = 0  # bumped when cached object handles may be stale
    records: dict[object, object] = field(
        default_factory=dict
    )  # lookups cached for this generation
    records_generation: int = 0


def _text(value: bytes | str) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip()


def _resolve_rescan(path: str, rescan: Rescan) -> Rescan:
    if rescan is Rescan.AUTO:
        return Rescan.REINITIALIZE if "softhsm" in os.path.basename(path).lower() else Rescan.POLL
    return rescan


class Pkcs11Module:
    """A loaded PKCS#11 module (python-pkcs11 underneath)."""

    def __init__(
        self,
        path: str,
        *,
        rescan: Rescan | str = Rescan.AUTO,
        rescan_interval: float = 1.0,
        ignore_labels: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not os.path.isfile(path):
            raise TokenIOError(f"PKCS#11 module {path!r} does not exist")
        self.path = path
        self.rescan_mode = _resolve_rescan(path, Rescan(rescan))
        self.rescan_interval = rescan_interval
        self.ignore_labels = ignore_labels
        # Every module is a private copy: its C_Finalize (rescan) touches nobody else, and it
        # can be initialized for threads (below) whatever else in the process loaded the path.
        self._private_dir: str | None = tempfile.mkdtemp(prefix="authd-p11-")
        load_path = os.path.join(self._private_dir, os.path.basename(path))
        shutil.copy2(path, load_path)
        self._load_path = load_path
        with pkcs11_errors(f"loading PKCS#11 module {path!r}"):
            try:
                self._lib = pkcs11.lib(load_path)
            except p11e.PKCS11Error:
                raise
            except Exception as exc:  # OSError-like failures from dlopen
                raise TokenIOError(
                    f"cannot load PKCS#11 module {path!r}: {type(exc).__name__}"
                ) from None
        # Concurrent calls need a module initialized for threads (python-pkcs11 passes NULL
        # arguments: "one thread at a time"). Ours is re-initialized with CKF_OS_LOCKING_OK;
        # a module that refuses it (CKR_CANT_LOCK) gets every call serialized by one lock.
        self._locking: OsLocking | None = None
        try:
            self._locking = OsLocking(load_path)
            self._locking.reinitialize()
        except (OSError, AttributeError) as exc:
            log.warning("%s: no OS locking (%s); calls are serialized", path, exc)
            self._locking = None
        self._serialize: threading.RLock | None = (
            threading.RLock() if self._locking is None else None
        )
        self.manufacturer = _text(self._lib.manufacturer_id)
        # SoftHSM2 checks a token object's file at each use of it (a lock and file reads per
        # signature, which serialize the threads signing); a session copy of the key does not.
        self.signs_with_copies = "softhsm" in self.manufacturer.lower()
        self.description = _text(self._lib.library_description)
        self._cond = threading.Condition()
        self._leases = 0
        self._states: dict[str, _TokenState] = {}
        self._clock = clock
        self._last_rescan = clock()
        self._last_forced: float | None = None  # when a capped rescan last re-initialized
        self.reinitializations = 0  # C_Finalize + C_Initialize rounds since loading
        self.listings_waiting = 0  # listings waiting for the next re-initialization (refresh)
        self._closed = False

    # ----------------------------------------------------------------- listing
    def tokens(self, fresh: bool = False) -> list[TokenInfo]:
        """The initialized tokens present now (rescanning first when due, or if ``fresh``)."""
        if fresh:
            self.refresh()
        else:
            self.maybe_rescan()
        with self._lease_gate():
            found: list[TokenInfo] = []
            with pkcs11_errors("listing slots"):
                slots = self._lib.get_slots(token_present=True)
            for slot in slots:
                try:
                    token = slot.get_token()
                except p11e.PKCS11Error:  # removed between the two calls, or unreadable
                    continue
                info = self._info(token)
                if info is None:
                    continue
                found.append(info)
            present = {t.serial for t in found}
            with self._cond:
                missing = [s for s in self._states if s not in present]
            for serial in missing:
                # A known token missing from one listing is asked again before it counts as
                # removed: SoftHSM2 answers a token's information with an error while another
                # process (pkcs11-tool, another node) holds its files, and dropping it would
                # end the login of a token that never left.
                info = self._still_present(serial)
                if info is not None:
                    found.append(info)
                    continue
                with self._cond:
                    self._drop(serial)
            return found

    def _still_present(self, serial: str, attempts: int = 3) -> TokenInfo | None:
        """The token's information if its slot still answers for it. Caller holds a lease."""
        with self._cond:
            state = self._states.get(serial)
        if state is None:
            return None
        for attempt in range(attempts):
            try:
                info = self._info(state.token.slot.get_token())
            except p11e.PKCS11Error:
                info = None
            if info is not None:
                return info if info.serial == serial else None
            if attempt + 1 < attempts:
                time.sleep(0.05)
        return None

    def token(self, serial: str) -> TokenInfo:
        """Fresh information about one token (raises TokenAbsent)."""
        with self._lease_gate():
            state = self._state(serial)
            try:
                with pkcs11_errors("reading token information", state.label):
                    token = state.token.slot.get_token()
            except (TokenAbsent, TokenIOError):
                with self._cond:
                    self._drop(serial)
                raise TokenAbsent(f"token {serial!r} is not present") from None
            info = self._info(token)
            if info is None or info.serial != serial:
                with self._cond:
                    self._drop(serial)
                raise TokenAbsent(f"token {serial!r} is not present")
            return info

    def pin_state(self, serial: str) -> PinState:
        return self.token(serial).pin_state

    def _info(self, token: pkcs11.Token) -> TokenInfo | None:
        flags = int(token.flags)
        label = _text(token.label)
        if not flags & CKF_TOKEN_INITIALIZED or label in self.ignore_labels:
            return None
        serial = _text(token.serial)
        with self._cond:
            state = self._states.get(serial)
            logged_in = state is not None and state.login is not None
        return TokenInfo(
            module=self.path,
            slot_id=int(token.slot.slot_id),
            label=label,
            serial=serial,
            manufacturer=_text(token.manufacturer_id),
            model=_text(token.model),
            flags=flags,
            logged_in=logged_in,
        )

    def _state(self, serial: str) -> _TokenState:
        """The cached state of a token, finding its slot when needed. Caller holds a lease."""
        with self._cond:
            state = self._states.get(serial)
            if state is not None:
                return state
        with pkcs11_errors("listing slots"):
            slots = self._lib.get_slots(token_present=True)
        for slot in slots:
            try:
                token = slot.get_token()
            except p11e.PKCS11Error:
                continue
            if _text(token.serial) == serial and int(token.flags) & CKF_TOKEN_INITIALIZED:
                if _text(token.label) in self.ignore_labels:
                    break
                with self._cond:
                    return self._states.setdefault(serial, _TokenState(token, _text(token.label)))
        raise TokenAbsent(f"token {serial!r} is not present")

    def _drop(self, serial: str) -> None:
        """Forget a token that went away; its sessions are dead. Caller holds _cond."""
        state = self._states.pop(serial, None)
        if state is None:
            return
        for pooled in state.idle:
            _quiet_close(pooled.session)
        if state.login is not None:
            _quiet_close(state.login)
            log.info("token %s removed while logged in; login dropped", serial)

    # ---------------------------------------------------------------- sessions
    @contextmanager
    def _lease_gate(self) -> Iterator[None]:
        with self._cond:
            if self._closed:
                raise TokenAbsent(f"PKCS#11 module {self.path!r} is closed")
            self._leases += 1
        try:
            if self._serialize is None:
                yield
            else:
                with self._serialize:
                    yield
        finally:
            with self._cond:
                self._leases -= 1
                self._cond.notify_all()

    @contextmanager
    def session(self, serial: str) -> Iterator[PooledSession]:
        """Lease a read/write session on the token from its pool."""
        with self._lease_gate():
            state = self._state(serial)
            with self._cond:
                pooled = state.idle.pop() if state.idle else None
                generation = state.generation
            if pooled is None:
                try:
                    with pkcs11_errors("opening a session", state.label):
                        pooled = PooledSession(state.token.open(rw=True), generation)
                except (TokenAbsent, TokenIOError) as exc:
                    if isinstance(exc, TokenAbsent) or not self._present(state):
                        with self._cond:
                            self._drop(serial)
                    raise
            if pooled.generation != generation:
                pooled.forget_objects()
                pooled.generation = generation
            broken = gone = False
            try:
                yield pooled
            except TokenAbsent:
                broken = gone = True
                raise
            except TokenIOError:
                # The session failed; the token may still be there (a module's passing
                # CKR_GENERAL_ERROR): forget it, and its login, only if it stopped answering.
                broken = True
                gone = not self._present(state)
                raise
            except ObjectMissing:
                # A token pulled out under a session makes its objects' handles invalid
                # (SoftHSM2 says CKR_OBJECT_HANDLE_INVALID): that is an absent token.
                if self._present(state):
                    raise
                broken = gone = True
                raise TokenAbsent(f"token {state.label!r} is not present (removed)") from None
            finally:
                with self._cond:
                    if broken:
                        _quiet_close(pooled.session)
                        if gone and self._states.get(serial) is state:
                            self._drop(serial)
                    elif self._states.get(serial) is state and len(state.idle) < MAX_IDLE_SESSIONS:
                        state.idle.append(pooled)
                    else:
                        _quiet_close(pooled.session)

    def _present(self, state: _TokenState) -> bool:
        """Whether the token of ``state`` still answers in its slot. Caller holds a lease."""
        try:
            with pkcs11_errors("reading token information", state.label):
                token = state.token.slot.get_token()
        except (TokenAbsent, TokenIOError):
            return False
        return _text(token.serial) == _text(state.token.serial)

    def require_present(self, serial: str) -> None:
        """Raise TokenAbsent unless the token is in its slot (a cheap C_GetTokenInfo)."""
        with self._lease_gate():
            state = self._state(serial)
            if not self._present(state):
                with self._cond:
                    self._drop(serial)
                raise TokenAbsent(f"token {state.label!r} is not present (removed)")

    def cached(self, serial: str, key: object, load: Callable[[], T]) -> T:
        """A lookup result cached until the token's objects or login state change."""
        with self._cond:
            state = self._states.get(serial)
            if state is not None:
                if state.records_generation != state.generation:
                    state.records.clear()
                    state.records_generation = state.generation
                if key in state.records:
                    return state.records[key]  # type: ignore[return-value]
                generation = state.generation
        value = load()
        with self._cond:
            if (
                state is not None
                and self._states.get(serial) is state
                and state.generation == generation
            ):
                state.records[key] = value
        return value

    def invalidate_objects(self, serial: str) -> None:
        """Object handles cached for this token may be stale (an object was destroyed). The
        idle sessions' key copies are destroyed now (a leased one's when it is next leased)."""
        with self._cond:
            state = self._states.get(serial)
            if state is None:
                return
            state.generation += 1
            generation = state.generation
            idle, state.idle = state.idle, []
        if not idle:
            return
        try:
            with self._lease_gate():  # no re-initialization under the destroys
                for pooled in idle:
                    pooled.forget_objects()
                    pooled.generation = generation
        except TokenAbsent:  # the module closed: its sessions are gone
            return
        with self._cond:
            if self._states.get(serial) is state:
                room = max(0, MAX_IDLE_SESSIONS - len(state.idle))
                state.idle.extend(idle[:room])
                idle = idle[room:]
        for pooled in idle:  # the token went away, or its pool filled meanwhile
            _quiet_close(pooled.session)

    # ------------------------------------------------------------------- login
    def login(self, serial: str, pin: str) -> TokenInfo:
        """Log the user in; the PIN goes to the token only. Wrong PIN: PinIncorrect."""
        with self._lease_gate():
            state = self._state(serial)
            with self._cond:
                if state.login is not None:
                    raise AlreadyLoggedIn(f"token {state.label!r}: a user is already logged in")
            with pkcs11_errors(
                "login", state.label, pin_state=lambda: self._fresh_pin_state(state)
            ):
                session = state.token.open(rw=True, user_pin=pin)
            with self._cond:
                if state.login is not None:  # lost a race with another login
                    _quiet_close(session)
                    raise AlreadyLoggedIn(f"token {state.label!r}: a user is already logged in")
                state.login = session
                state.generation += 1
        return self.token(serial)

    def logout(self, serial: str) -> None:
        """Log the user out. Does nothing if the token is gone or nobody is logged in."""
        with self._cond:
            state = self._states.get(serial)
            if state is None or state.login is None:
                return
            session, state.login = state.login, None
            state.generation += 1
        try:
            with pkcs11_errors("logout", state.label):
                session.close()
        except Exception as exc:  # the token may have been removed: the login is gone anyway
            log.info("logout on token %s: %s", serial, type(exc).__name__)

    def unblock_pin(self, serial: str, so_pin: str, new_pin: str) -> TokenInfo:
        """Set a new user PIN as the security officer (C_InitPIN), which clears a PIN lock."""
        with self._lease_gate():
            state = self._state(serial)
            with self._cond:
                if state.login is not None:
                    raise AlreadyLoggedIn(f"token {state.label!r}: a user is logged in")
            with pkcs11_errors(
                "unblocking the user PIN", state.label, pin_state=lambda: PinState()
            ):
                session = state.token.open(rw=True, so_pin=so_pin)
                try:
                    session.init_pin(new_pin)
                finally:
                    session.close()
        return self.token(serial)

    # ---------------------------------------------------------- initialization
    def initialization_marker(self, serial: str, application: str) -> bytes | None:
        """The value of the public data object ``application`` put on the token
        (``mark_initialization``), or None when there is none: (re-)initializing a token
        destroys every object on it, so a marker gone means a new initialization."""
        with self.session(serial) as pooled, pkcs11_errors("reading the token's objects"):
            for obj in pooled.session.get_objects({
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
                    pkcs11.Attribute.TOKEN: True,
                    pkcs11.Attribute.APPLICATION: application}):
                return bytes(obj[pkcs11.Attribute.VALUE])
        return None

    def mark_initialization(self, serial: str, application: str, value: bytes) -> bool:
        """Put a public, unmodifiable data object ``application`` holding ``value`` on the
        token, without a login (an R/W public session). False when the token refuses it
        (read-only, full, or public objects not writable without a login)."""
        try:
            with self.session(serial) as pooled, pkcs11_errors("marking the token"):
                pooled.session.create_object({
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.DATA,
                    pkcs11.Attribute.TOKEN: True,
                    pkcs11.Attribute.PRIVATE: False,
                    pkcs11.Attribute.MODIFIABLE: False,
                    pkcs11.Attribute.APPLICATION: application,
                    pkcs11.Attribute.LABEL: application,
                    pkcs11.Attribute.VALUE: value})
        except (TokenError, TokenIOError) as exc:
            log.info("token %s takes no initialization marker: %s", serial, exc)
            return False
        return True

    def is_logged_in(self, serial: str) -> bool:
        with self._cond:
            state = self._states.get(serial)
            return state is not None and state.login is not None

    def require_login(self, serial: str) -> None:
        if not self.is_logged_in(serial):
            raise NotLoggedIn(f"token {serial!r}: log in first")

    def _fresh_pin_state(self, state: _TokenState) -> PinState:
        return PinState.from_flags(int(state.token.slot.get_token().flags))

    # ------------------------------------------------------------------ rescan
    def maybe_rescan(self) -> bool:
        """Re-initialize a non-hot-plugging module if due and idle. True if it did."""
        if self.rescan_mode is not Rescan.REINITIALIZE:
            return False
        with self._cond:
            now = self._clock()
            if now - self._last_rescan < self.rescan_interval:
                return False
            return self._reinitialize_locked(now)

    def rescan(self, *, capped: bool = False) -> bool:
        """Re-initialize now (SoftHSM2-style modules only), once the calls in flight (another
        thread's listing, a signature) have ended; never while a user is logged in. True if it
        did. A token plugged in just before is found even while the module is being polled.

        ``capped`` (a lookup of a serial no module knows): not again within
        ``rescan_interval`` of the last capped rescan that re-initialized, so that a caller
        asking for unknown serials in a loop cannot end everybody's sessions again and again;
        a token plugged in meanwhile is found by the first lookup after the interval."""
        if self.rescan_mode is not Rescan.REINITIALIZE:
            return False
        with self._cond:
            if capped and self._forced_recently():
                return False
            self._cond.wait_for(lambda: self._closed or not self._leases or self._logged_in(),
                                timeout=RESCAN_WAIT_SECONDS)
            if capped and self._forced_recently():  # another lookup's rescan ended the wait
                return False
            now, rounds = self._clock(), self.reinitializations
            done = self._reinitialize_locked(now)
            if capped and self.reinitializations != rounds:  # tried: the sessions ended
                self._last_forced = now
            return done

    def refresh(self) -> bool:
        """A listing's rescan (``tokens(fresh=True)``, ListTokens): its answer comes from a
        scan made after it was asked, under the lookups' cap. SoftHSM2 shows a token
        initialized again by another process (softhsm2-util) with its new label at once but
        keeps its old PIN and objects until ``C_Initialize``, so a listing answered from an
        earlier scan shows a token that is not there any more; and re-initializing for every
        listing lets a loop of them end everybody's sessions. So a listing within
        ``rescan_interval`` of the last capped re-initialization waits for the interval to
        end (a re-initialization made meanwhile, after it was asked, serves it too), and then
        re-initializes as a capped rescan does. True if a re-initialization since the call
        did. While a user is logged in nothing re-initializes the module (it would end the
        login): the listing answers at once from the module's own view, as a lookup does."""
        if self.rescan_mode is not Rescan.REINITIALIZE:
            return False
        with self._cond:
            asked = self.reinitializations  # a round counted after this one began later
            while not self._closed and self.reinitializations == asked:
                if self._logged_in():
                    return False
                last = self._last_forced
                left = 0.0 if last is None else self.rescan_interval - (self._clock() - last)
                if left <= 0:
                    break
                self.listings_waiting += 1
                try:
                    self._cond.wait(timeout=left)
                finally:
                    self.listings_waiting -= 1
            if self.reinitializations != asked:
                return True
        return self.rescan(capped=True)

    def _forced_recently(self) -> bool:
        """Did a capped rescan re-initialize less than ``rescan_interval`` ago? Caller holds
        _cond."""
        last = self._last_forced
        return last is not None and self._clock() - last < self.rescan_interval

    def _logged_in(self) -> bool:
        """Is a user logged in on one of the tokens? Caller holds _cond."""
        return any(s.login is not None for s in self._states.values())

    def _reinitialize_locked(self, now: float) -> bool:
        if self._closed or self._leases or self._logged_in():
            return False
        self._last_rescan = now
        self._states.clear()  # sessions die with C_Finalize; never close them afterwards
        self.reinitializations += 1
        self._cond.notify_all()  # listings waiting for a scan (refresh)
        try:
            with pkcs11_errors("re-initializing PKCS#11 module"):
                if self._locking is not None:
                    self._locking.reinitialize()
                else:
                    self._lib.reinitialize()
        except Exception as exc:
            log.warning("re-initializing %s failed: %s", self.path, exc)
            return False
        return True

    def close(self) -> None:
        with self._cond:
            while self._leases:
                self._cond.wait(timeout=5)
                break
            for serial in list(self._states):
                self._drop(serial)
            self._closed = True
        pkcs11.unload(self._load_path)
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)


def _quiet_close(session: pkcs11.Session) -> None:
    try:
        session.close()
    except Exception:  # a dead session: nothing to release
        pass


class ModuleSet:
    """Several modules at once, looked up by token serial."""

    def __init__(self, modules: list[Pkcs11Module]) -> None:
        self.modules = modules

    def tokens(self, fresh: bool = False) -> list[TokenInfo]:
        out: list[TokenInfo] = []
        for module in self.modules:
            try:
                out.extend(module.tokens(fresh))
            except (TokenAbsent, TokenIOError) as exc:
                log.warning("listing tokens of %s failed: %s", module.path, exc)
        return out

    def find(self, serial: str) -> tuple[Pkcs11Module, TokenInfo]:
        """The module holding the token with this serial (raises TokenAbsent)."""
        for module in self.modules:
            if module.is_logged_in(serial):
                return module, module.token(serial)
        for _ in range(2):
            for module in self.modules:
                try:
                    return module, module.token(serial)
                except TokenAbsent:
                    continue
            rescanned = [m.rescan(capped=True) for m in self.modules]
            if not any(rescanned):
                break
        raise TokenAbsent(f"token {serial!r} is not present")

    def close(self) -> None:
        for module in self.modules:
            module.close()
