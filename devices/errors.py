"""Project error classes (placeholder until the foundation lands; the lead's version wins)."""

from __future__ import annotations


class AuthdError(Exception):
    """Base error; the message is safe to show a caller."""


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
