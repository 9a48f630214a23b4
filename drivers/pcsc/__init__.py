"""PC/SC driver: the only module that imports pyscard (`smartcard`)."""

from __future__ import annotations

from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.context import PcscContext, list_readers
from drivers.pcsc.errors import (
    CardAbsent,
    CardResetError,
    PcscServiceUnavailable,
    ReaderBusy,
    ReaderNotFound,
)
from drivers.pcsc.monitor import EventKind, ReaderEvent, ReaderMonitor, Snapshot, diff

__all__ = [
    "CardAbsent",
    "CardResetError",
    "EventKind",
    "PcscConnection",
    "PcscContext",
    "PcscServiceUnavailable",
    "ReaderBusy",
    "ReaderEvent",
    "ReaderMonitor",
    "ReaderNotFound",
    "Snapshot",
    "diff",
    "list_readers",
]
