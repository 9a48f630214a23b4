"""Login handles: short-lived, bound to the caller (institution + subject), idle timeout.

A handle stands for one user login on one token. One token has at most one handle: the
PKCS#11 login belongs to the whole daemon process, so a second caller must wait until the
first logs out or its handle expires.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authd.context import Caller
from devices.errors import NoSuchObject, WrongState
from drivers.pkcs11 import Pkcs11Module, Pkcs11TokenSession, TokenAbsent

HANDLE_BYTES = 24
MAX_HANDLE_LEN = 128


def new_handle() -> str:
    """A random handle. It starts with a letter, never with "-": command lines
    (``authctl token ... --session HANDLE``) must take it as a value, not an option."""
    return "tks_" + secrets.token_urlsafe(HANDLE_BYTES)


@dataclass
class TokenLogin:
    handle: str
    institution: str
    subject: str
    module: Pkcs11Module
    serial: str
    label: str
    created: float
    last_used: float
    session: Pkcs11TokenSession = field(repr=False)
    # How long this login's signatures take (seconds, moving average; None: not measured yet).
    sign_seconds: float | None = None
    # Each key's certificate on the token (DER; None: none), looked up once per login for the
    # check before a signature; cleared whenever this login changes the token's objects.
    certificates: dict[bytes, bytes | None] = field(default_factory=dict, repr=False)
    # The user PIN, kept only until the login is lent to the native front end (which logs its
    # own module instance in with it: authd/token/lending.py), then wiped; never logged.
    pin: bytearray | None = field(default=None, repr=False)
    linked_signs: int = 0  # good unary Signs through the native front end, before it is lent

    def keep_pin(self, pin: str) -> None:
        self.pin = bytearray(pin.encode())

    def take_pin(self) -> bytes | None:
        """The PIN kept for lending, wiped here (None: none kept, or taken already)."""
        pin, self.pin = self.pin, None
        if pin is None:
            return None
        taken = bytes(pin)
        pin[:] = bytes(len(pin))
        return taken

    def timed_sign(self, seconds: float) -> None:
        previous = self.sign_seconds
        self.sign_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def owned_by(self, caller: Caller) -> bool:
        return self.institution == caller.institution and self.subject == caller.subject


class SessionTable:
    def __init__(
        self, idle_seconds: float, max_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._by_handle: dict[str, TokenLogin] = {}
        # Told of every login that ends, before its token is logged out (``wait``: the
        # caller may wait for a lent login to come back: authd/token/lending.py).
        self.on_end: Callable[[TokenLogin, bool], None] | None = None

    def _end(self, login: TokenLogin, *, wait: bool) -> None:
        login.take_pin()
        if self.on_end is not None:
            self.on_end(login, wait)
        login.module.logout(login.serial)

    def _expire(self, login: TokenLogin, *, wait: bool) -> bool:
        """Ends ``login``, found expired: told first (a lent login is recalled; ``wait``: until
        the front end gave it back), while its handle still answers, then the handle ends,
        unless the Signs told with the lease's return used it after all. Whether it ended."""
        if self.on_end is not None:
            self.on_end(login, wait)
        with self._lock:
            ended = (self._by_handle.get(login.handle) is login
                     and self._expired(login, self._clock()))
            if ended:
                del self._by_handle[login.handle]
        if ended:
            self._end(login, wait=False)  # (its lease is back or forgotten already)
        return ended

    def touch(self, login: TokenLogin) -> None:
        """The login was used now elsewhere (a lent login's Signs, told by the front end)."""
        with self._lock:
            login.last_used = max(login.last_used, self._clock())

    def live(self, login: TokenLogin) -> bool:
        """Whether ``login`` is still its handle's (not ended)."""
        with self._lock:
            return self._by_handle.get(login.handle) is login

    def _timed_out(self, login: TokenLogin, now: float) -> bool:
        return now - login.last_used > self.idle_seconds or now - login.created > self.max_seconds

    def _expired(self, login: TokenLogin, now: float) -> bool:
        return self._timed_out(login, now) or not login.module.is_logged_in(login.serial)

    @staticmethod
    def _token_absent(login: TokenLogin) -> bool:
        """Whether the login ended because its token went away (and is still away)."""
        try:
            login.module.require_present(login.serial)
        except TokenAbsent:
            return True
        return False

    def left(self, login: TokenLogin) -> tuple[float, float]:
        """What is left now of ``login``'s idle time and of its maximum lifetime (seconds)."""
        with self._lock:
            now = self._clock()
            return (login.last_used + self.idle_seconds - now,
                    login.created + self.max_seconds - now)

    def expires_in(self, login: TokenLogin) -> float:
        now = self._clock()
        return max(
            0.0, min(login.last_used + self.idle_seconds, login.created + self.max_seconds) - now
        )

    def holder(self, serial: str) -> TokenLogin | None:
        """The live handle on this token, if any."""
        with self._lock:
            now = self._clock()
            for login in self._by_handle.values():
                if login.serial == serial and not self._expired(login, now):
                    return login
        return None

    def add(self, caller: Caller, module: Pkcs11Module, serial: str, label: str) -> TokenLogin:
        now = self._clock()
        login = TokenLogin(
            handle=new_handle(),
            institution=caller.institution,
            subject=caller.subject,
            module=module,
            serial=serial,
            label=label,
            created=now,
            last_used=now,
            session=Pkcs11TokenSession(module, serial, label),
        )
        with self._lock:
            for other in self._by_handle.values():
                if other.serial == serial and not self._expired(other, now):
                    raise WrongState(f"token {label!r} is in use by another session")
            self._by_handle[login.handle] = login
        return login

    def peek(self, handle: str) -> TokenLogin | None:
        """The login of a handle, whoever owns it, without touching it (for scheduling only:
        every operation still goes through :meth:`get`)."""
        with self._lock:
            return self._by_handle.get(handle)

    def get(self, handle: str, caller: Caller) -> TokenLogin:
        """The caller's live handle (touching it), or NoSuchObject. Ends an expired handle."""
        if not handle or len(handle) > MAX_HANDLE_LEN:
            raise NoSuchObject("no such token session")
        now = self._clock()
        with self._lock:
            login = self._by_handle.get(handle)
            if login is None or not login.owned_by(caller):
                raise NoSuchObject(
                    "no such token session (expired, logged out or another caller's)")
            if not self._expired(login, now):
                login.last_used = now
                return login
        if not self._timed_out(login, now) and self._token_absent(login):
            # The handle outlives its token's removal until it times out: while the token is
            # away its calls answer UNAVAILABLE, as any call on an absent token does.
            raise TokenAbsent(f"token {login.label!r} is not present (removed); insert it and "
                              "log in again")
        # (A call on the link's reader thread must not wait for a lent login: on_end knows.)
        if not self._expire(login, wait=True) and self.peek(handle) is login:
            with self._lock:
                login.last_used = max(login.last_used, now)
            return login
        raise NoSuchObject(
            "the token session has ended (idle timeout, logout or token removed); log in again"
        )

    def remove(self, handle: str, caller: Caller) -> TokenLogin:
        with self._lock:
            login = self._by_handle.get(handle)
            if login is None or not login.owned_by(caller):
                raise NoSuchObject("no such token session")
            del self._by_handle[handle]
        self._end(login, wait=True)
        return login

    def sweep(self) -> list[TokenLogin]:
        """End expired handles (logging their tokens out); returns them."""
        now = self._clock()
        with self._lock:
            candidates = [x for x in self._by_handle.values() if self._expired(x, now)]
        ended = [
            x for x in candidates if self._timed_out(x, now) or not self._token_absent(x)
        ]
        return [x for x in ended if self._expire(x, wait=True)]

    def clear(self) -> None:
        with self._lock:
            logins = list(self._by_handle.values())
            self._by_handle.clear()
        for login in logins:
            self._end(login, wait=False)
