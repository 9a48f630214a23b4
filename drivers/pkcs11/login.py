"""One login per token and process, shared by every user of the token in the process.

PKCS#11 keeps the login state per application and token: every session of the process is
logged in once one of them is, and ``C_Logout`` through any of them logs them all out.
python-pkcs11's ``Session.close()`` calls ``C_Logout`` when that session was opened with a PIN,
so two users of one token in a process (the key-encryption key and the audit signing key, or
two daemons of a test in one process) would log each other out: the first to close leaves the
other's key handles invalid. Here the login is held by an anchor session of its own, counted
by its users; their sessions are opened without a PIN (they share the login and their close
does not log out), and the anchor closes, logging out, when the last user releases it.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass
from typing import Any

import pkcs11

_LOCK = threading.Lock()


@dataclass
class _Held:
    anchor: Any  # the session that logged in (or None: logged in outside this registry)
    pin_digest: bytes
    users: int


_HELD: dict[tuple[str, str], _Held] = {}


def _key(token: Any) -> tuple[str, str]:
    return (str(token.manufacturer_id).strip() + "/" + str(token.model).strip(),
            str(token.serial.decode() if isinstance(token.serial, bytes) else token.serial))


def _digest(pin: str) -> bytes:
    return hashlib.sha256(pin.encode()).digest()


class Login:
    """A share of the process's login to ``token``; ``open()`` gives sessions that use it."""

    def __init__(self, token: Any, pin: str) -> None:
        """Log in with ``pin`` unless this process is logged in already (then ``pin`` must be
        the PIN that logged in). Raises python-pkcs11's errors (``PinIncorrect``...)."""
        self._token = token
        self._key = _key(token)
        with _LOCK:
            held = _HELD.get(self._key)
            if held is not None:
                if not hmac.compare_digest(held.pin_digest, _digest(pin)):
                    raise pkcs11.PinIncorrect()
                held.users += 1
            else:
                try:
                    anchor = token.open(user_pin=pin, rw=True)
                except pkcs11.UserAlreadyLoggedIn:
                    anchor = None  # logged in by code that does not use this registry
                _HELD[self._key] = _Held(anchor, _digest(pin), 1)
        self._released = False

    def open(self, *, rw: bool = True) -> Any:
        """A session sharing the login; closing it does not log out."""
        return self._token.open(rw=rw)

    def release(self) -> None:
        """Give the share back; the last one logs the process out. Idempotent."""
        with _LOCK:
            if self._released:
                return
            self._released = True
            held = _HELD[self._key]
            held.users -= 1
            if held.users:
                return
            del _HELD[self._key]
        if held.anchor is not None:
            try:
                held.anchor.close()
            except pkcs11.PKCS11Error:
                pass
