"""The project's error classes, named by what happened.

An error's message is shown to the caller as it is, so it must never contain a secret
(PIN, seed, card code, key). The daemon maps each class to one gRPC status code in one table
(``authd/errors.py``) and sends ``reason`` and ``metadata`` as structured details
(``google.rpc.ErrorInfo``); business outcomes (wrong code, locked, lost) are values, not errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


def _reason_of(cls: type) -> str:
    """``NoSuchObject`` -> ``NO_SUCH_OBJECT``: the default machine-readable reason."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).upper()


class AuthdError(Exception):
    """Base of every error the daemon turns into a gRPC status.

    ``reason`` is a stable UPPER_SNAKE code a client may act on (default: the class name);
    ``metadata`` carries small facts that go with it (never a secret), e.g. attempts left."""

    def __init__(self, message: str = "", *, reason: str | None = None,
                 metadata: Mapping[str, str | int] | None = None) -> None:
        super().__init__(message)
        self.reason = reason or _reason_of(type(self))
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}


class BadRequest(AuthdError):
    """The request is malformed: a field is missing, too long, or not of its form."""

    def __init__(self, message: str = "", *, field: str = "", reason: str | None = None,
                 metadata: Mapping[str, str | int] | None = None) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.field = field


class NoSuchObject(AuthdError):
    """The named object does not exist (or is not the caller's to see)."""


class AlreadyPresent(AuthdError):
    """The object to create exists already."""


class NotPermitted(AuthdError):
    """The caller's role or institution may not do this."""


class WrongState(AuthdError):
    """The object is not in a state that allows this."""


class Unreachable(AuthdError):
    """A device, the store or the center is absent, unreachable or shutting down."""


class LimitReached(AuthdError):
    """A size, count or rate limit was reached; ``retry_after`` seconds when known."""

    def __init__(self, message: str = "", *, retry_after: float | None = None,
                 reason: str | None = None,
                 metadata: Mapping[str, str | int] | None = None) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after = retry_after


class TimedOut(AuthdError):
    """A device, the store or the center did not answer in time."""


class DeviceFault(AuthdError):
    """A device answered with something that cannot be used (corrupted or malformed)."""
