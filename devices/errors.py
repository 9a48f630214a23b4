"""The project's error classes (placeholder until the foundation lands)."""

from __future__ import annotations


class AuthdError(Exception):
    """Base error; the message is safe to show a caller and never holds a secret."""


class InvalidArgument(AuthdError):
    pass


class NotFound(AuthdError):
    pass


class AlreadyExists(AuthdError):
    pass


class PermissionDenied(AuthdError):
    pass


class FailedPrecondition(AuthdError):
    pass


class Unavailable(AuthdError):
    pass


class ResourceExhausted(AuthdError):
    pass


class DeadlineExceeded(AuthdError):
    pass
