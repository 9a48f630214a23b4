"""The one place where PKCS#11 errors become the project's driver errors.

Every call into python-pkcs11 in this package runs inside :func:`pkcs11_errors`,
which turns ``pkcs11.exceptions.*`` into the classes below. Messages never carry
a PIN or key material; they name the operation and the token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pkcs11.exceptions as p11e

from drivers.errors import DeviceAbsent, DeviceIOError, DriverError

# CK_TOKEN_INFO flags that describe the user PIN (PKCS#11 v2.40 §4.6.2).
CKF_USER_PIN_COUNT_LOW = 0x0001_0000
CKF_USER_PIN_FINAL_TRY = 0x0002_0000
CKF_USER_PIN_LOCKED = 0x0004_0000
CKF_USER_PIN_TO_BE_CHANGED = 0x0008_0000
CKR_KEY_FUNCTION_NOT_PERMITTED = 0x68


@dataclass(frozen=True)
class PinState:
    """The user-PIN state a token reports through its flags."""

    count_low: bool = False
    final_try: bool = False
    locked: bool = False
    to_be_changed: bool = False

    @classmethod
    def from_flags(cls, flags: int) -> PinState:
        return cls(
            count_low=bool(flags & CKF_USER_PIN_COUNT_LOW),
            final_try=bool(flags & CKF_USER_PIN_FINAL_TRY),
            locked=bool(flags & CKF_USER_PIN_LOCKED),
            to_be_changed=bool(flags & CKF_USER_PIN_TO_BE_CHANGED),
        )

    @property
    def attempts_remaining(self) -> int | None:
        """Attempts left as far as the flags tell it: 0 locked, 1 final try, else unknown."""
        if self.locked:
            return 0
        if self.final_try:
            return 1
        return None


class TokenAbsent(DeviceAbsent):
    """The token is not (or no longer) in its slot."""


class TokenIOError(DeviceIOError):
    """The token or its module failed while working."""


class TokenError(DriverError):
    """Base class of the token errors that are not about presence or I/O."""


class PinIncorrect(TokenError):
    """The PIN was wrong; ``attempts_remaining`` is known only when the token says it."""

    def __init__(self, message: str, attempts_remaining: int | None, pin_state: PinState) -> None:
        super().__init__(message)
        self.attempts_remaining = attempts_remaining
        self.pin_state = pin_state


class PinLocked(TokenError):
    """The user PIN is blocked; a branch must unblock it with the SO PIN."""


class PinFormatInvalid(TokenError):
    """The PIN has a length or characters the token refuses."""


class NotLoggedIn(TokenError):
    """The operation needs a logged-in user."""


class AlreadyLoggedIn(TokenError):
    """Someone is already logged in to this token."""


class TokenBusy(TokenError):
    """The token refuses more sessions or has an operation running."""


class MechanismUnsupported(TokenError):
    """The token lacks the mechanism or its parameters."""


class TokenInvalidInput(TokenError):
    """The token refused the data, template or parameters given."""


class ObjectMissing(TokenError):
    """No such object (key or certificate) on the token."""


class TokenFull(TokenError):
    """The token has no room left."""


class TokenReadOnly(TokenError):
    """The token is write-protected."""


_ABSENT = (
    p11e.TokenNotPresent,
    p11e.DeviceRemoved,
    p11e.TokenNotRecognised,
    p11e.SessionClosed,
    p11e.SessionHandleInvalid,
    p11e.SlotIDInvalid,
    p11e.NoSuchToken,
)
_IO = (
    p11e.GeneralError,
    p11e.DeviceError,
    p11e.FunctionFailed,
    p11e.HostMemory,
    p11e.FunctionCancelled,
)
_MECHANISM = (
    p11e.MechanismInvalid,
    p11e.MechanismParamInvalid,
    p11e.FunctionNotSupported,
    p11e.KeyTypeInconsistent,
    p11e.KeyUnextractable,
    p11e.AttributeSensitive,
)
_INPUT = (
    p11e.DataLenRange,
    p11e.DataInvalid,
    p11e.ArgumentsBad,
    p11e.AttributeValueInvalid,
    p11e.AttributeTypeInvalid,
    p11e.AttributeReadOnly,
    p11e.TemplateIncomplete,
    p11e.TemplateInconsistent,
    p11e.DomainParamsInvalid,
    p11e.KeySizeRange,
    p11e.SignatureLenRange,
)
_MISSING = (p11e.NoSuchKey, p11e.ObjectHandleInvalid, p11e.KeyHandleInvalid)
_BUSY = (p11e.SessionCount, p11e.OperationActive, p11e.SessionExists)


def translate(
    exc: p11e.PKCS11Error,
    what: str,
    token: str,
    pin_state: Callable[[], PinState] | None = None,
) -> DriverError:
    """Map one python-pkcs11 exception to a driver error with a clear, secret-free message."""
    name = type(exc).__name__
    where = f"{what} on token {token!r}" if token else what
    if isinstance(exc, p11e.PinIncorrect):
        state = _safe_state(pin_state)
        left = state.attempts_remaining
        if state.locked:
            return PinLocked(f"{where}: wrong PIN; the PIN is now locked")
        tail = (
            f"{left} attempt(s) left"
            if left is not None
            else "attempts left not reported by the token"
        )
        if state.count_low and left is None:
            tail += " (the token reports few attempts left)"
        return PinIncorrect(f"{where}: wrong PIN, {tail}", left, state)
    if isinstance(exc, p11e.PinLocked):
        return PinLocked(f"{where}: the user PIN is locked; unblock it at a branch")
    if isinstance(exc, (p11e.PinLenRange, p11e.PinInvalid)):
        return PinFormatInvalid(f"{where}: the token refuses this PIN's length or characters")
    if isinstance(exc, p11e.PinExpired):
        return PinLocked(f"{where}: the PIN has expired and must be changed")
    if isinstance(exc, (p11e.UserNotLoggedIn, p11e.UserPinNotInitialized)):
        return NotLoggedIn(f"{where}: log in first")
    if isinstance(exc, (p11e.UserAlreadyLoggedIn, p11e.AnotherUserAlreadyLoggedIn)):
        return AlreadyLoggedIn(f"{where}: a user is already logged in")
    if isinstance(exc, _ABSENT):
        return TokenAbsent(f"{where}: the token is not present")
    if isinstance(exc, _MISSING):
        return ObjectMissing(f"{where}: no such object on the token")
    if isinstance(exc, _MECHANISM):
        return MechanismUnsupported(
            f"{where}: the token does not support this mechanism or key use ({name})"
        )
    if isinstance(exc, _INPUT):
        return TokenInvalidInput(f"{where}: the token refused the input ({name})")
    if isinstance(exc, p11e.DeviceMemory):
        return TokenFull(f"{where}: the token is full")
    if isinstance(exc, (p11e.TokenWriteProtected, p11e.SessionReadOnly)):
        return TokenReadOnly(f"{where}: the token is write-protected")
    if isinstance(exc, _BUSY):
        return TokenBusy(f"{where}: the token is busy ({name})")
    if isinstance(exc, _IO):
        return TokenIOError(f"{where}: the token failed ({name})")
    text = str(exc)
    if "not initialized" in text:  # the module was finalized under us (rescan, shutdown)
        return TokenAbsent(f"{where}: the token's module was reset; try again")
    if text.endswith(hex(CKR_KEY_FUNCTION_NOT_PERMITTED)):
        return MechanismUnsupported(f"{where}: the key does not permit this use")
    return TokenError(f"{where}: PKCS#11 error {name}")


def _safe_state(pin_state: Callable[[], PinState] | None) -> PinState:
    if pin_state is None:
        return PinState()
    try:
        return pin_state()
    except Exception:  # the token may be gone: the PIN error still stands
        return PinState()


@contextmanager
def pkcs11_errors(
    what: str, token: str = "", pin_state: Callable[[], PinState] | None = None
) -> Iterator[None]:
    """Run a block of python-pkcs11 calls; re-raise its errors as driver errors."""
    try:
        yield
    except p11e.PKCS11Error as exc:
        raise translate(exc, what, token, pin_state) from None
