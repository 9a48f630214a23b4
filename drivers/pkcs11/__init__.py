"""PKCS#11 driver: the only package that imports python-pkcs11."""

from drivers.pkcs11.errors import (
    AlreadyLoggedIn,
    MechanismUnsupported,
    NotLoggedIn,
    ObjectMissing,
    PinFormatInvalid,
    PinIncorrect,
    PinLocked,
    PinState,
    TokenAbsent,
    TokenBusy,
    TokenError,
    TokenFull,
    TokenInvalidInput,
    TokenIOError,
    TokenReadOnly,
)
from drivers.pkcs11.module import ModuleSet, Pkcs11Module, Rescan, TokenInfo
from drivers.pkcs11.session import Pkcs11TokenSession
from drivers.pkcs11.watcher import TokenEvent, TokenEventKind, TokenWatcher

__all__ = [
    "AlreadyLoggedIn",
    "MechanismUnsupported",
    "ModuleSet",
    "NotLoggedIn",
    "ObjectMissing",
    "PinFormatInvalid",
    "PinIncorrect",
    "PinLocked",
    "PinState",
    "Pkcs11Module",
    "Pkcs11TokenSession",
    "Rescan",
    "TokenAbsent",
    "TokenBusy",
    "TokenError",
    "TokenEvent",
    "TokenEventKind",
    "TokenFull",
    "TokenIOError",
    "TokenInfo",
    "TokenInvalidInput",
    "TokenReadOnly",
    "TokenWatcher",
]
