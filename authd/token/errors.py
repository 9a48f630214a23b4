"""Driver errors whose gRPC status differs from the generic driver mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devices.errors import (
    BadRequest,
    LimitReached,
    NoSuchObject,
    NotPermitted,
    WrongState,
)
from drivers.pkcs11 import (
    AlreadyLoggedIn,
    NotLoggedIn,
    ObjectMissing,
    PinFormatInvalid,
    PinIncorrect,
    PinLocked,
    TokenFull,
    TokenInvalidInput,
)


class WrongPin(NotPermitted):
    """The PIN was wrong; ``attempts_left`` (None when nobody knows it) travels in the error's
    details (``ErrorInfo`` reason ``WRONG_PIN``, metadata ``attempts_left``)."""

    def __init__(self, message: str, attempts_left: int | None) -> None:
        super().__init__(message, metadata={} if attempts_left is None
                         else {"attempts_left": attempts_left})
        self.attempts_left = attempts_left


class PinBlocked(WrongState):
    """The user PIN is locked (by the token or by the daemon's limit)."""


@contextmanager
def token_errors() -> Iterator[None]:
    """Re-raise driver errors as project errors where the status code should differ."""
    try:
        yield
    except PinIncorrect as exc:
        raise WrongPin(str(exc), exc.attempts_remaining) from None
    except PinLocked as exc:
        raise PinBlocked(str(exc)) from None
    except (PinFormatInvalid, TokenInvalidInput) as exc:
        raise BadRequest(str(exc)) from None
    except ObjectMissing as exc:
        raise NoSuchObject(str(exc)) from None
    except TokenFull as exc:
        raise LimitReached(str(exc)) from None
    except (NotLoggedIn, AlreadyLoggedIn) as exc:
        raise WrongState(str(exc)) from None
