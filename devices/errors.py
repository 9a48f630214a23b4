"""The project's error classes.

An error's message is shown to the caller as it is, so it must never contain a secret
(PIN, seed, card code, key). The daemon's error interceptor maps each class to one gRPC
status code; business outcomes (wrong code, locked, lost) are values, not errors.
"""

from __future__ import annotations


class AuthdError(Exception):
    """Base of every error the daemon turns into a gRPC status."""


class InvalidArgument(AuthdError):
    """The request is malformed."""


class NotFound(AuthdError):
    """The named object does not exist."""


class AlreadyExists(AuthdError):
    """The object to create exists already."""


class PermissionDenied(AuthdError):
    """The caller's role or institution may not do this."""


class FailedPrecondition(AuthdError):
    """The object is not in a state that allows this."""


class Unavailable(AuthdError):
    """A device or the store is absent or unreachable."""


class ResourceExhausted(AuthdError):
    """A size or rate limit was exceeded."""


class DeadlineExceeded(AuthdError):
    """A device did not answer in time."""
