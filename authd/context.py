"""Who is calling: set by the auth interceptor, read by servicers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum, unique

from devices.errors import NotPermitted


@unique
class Role(StrEnum):
    BACKEND = "backend"  # an institution's internet-banking backend
    BRANCH = "branch"  # a branch terminal (teller PC)
    ADMIN = "admin"  # operations


@dataclass(frozen=True)
class Caller:
    institution: str
    role: Role
    subject: str  # terminal or backend node name (the certificate's CN)
    # The teller at a branch node on whose behalf the node calls (the node's statement,
    # carried in the ``x-authd-operator`` metadata of a branch-role call); "" otherwise.
    operator: str = ""


SYSTEM = Caller(institution="-", role=Role.ADMIN, subject="authd")

_current: ContextVar[Caller | None] = ContextVar("authd_caller", default=None)


def current_caller() -> Caller:
    caller = _current.get()
    if caller is None:
        raise NotPermitted("no authenticated caller")
    return caller


def set_caller(caller: Caller | None) -> object:
    return _current.set(caller)


def reset_caller(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]


def require_role(*roles: Role) -> Caller:
    return check_role(current_caller(), *roles)


def check_role(caller: Caller, *roles: Role) -> Caller:
    """``caller``, if its role is one of ``roles``; NotPermitted otherwise."""
    if caller.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise NotPermitted(f"role {caller.role.value!r} may not call this (needs {allowed})")
    return caller
