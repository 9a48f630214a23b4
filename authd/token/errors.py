"""Driver errors whose gRPC status differs from the generic driver mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devices.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
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

ATTEMPTS_LEFT_METADATA = "x-authd-pin-attempts-left"


class WrongPin(PermissionDenied):
    """The PIN was wrong; ``attempts_left`` is None when nobody knows it."""

    def __init__(self, message: str, attempts_left: int | None) -> None:
        super().__init__(message)
        self.attempts_left = attempts_left


class PinBlocked(FailedPrecondition):
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
        raise InvalidArgument(str(exc)) from None
    except ObjectMissing as exc:
        raise NotFound(str(exc)) from None
    except TokenFull as exc:
        raise ResourceExhausted(str(exc)) from None
    except (NotLoggedIn, AlreadyLoggedIn) as exc:
        raise FailedPrecondition(str(exc)) from None
