"""Embosser and printer driver: BRF (or print) jobs over a raw socket, device file or queue."""

from __future__ import annotations

from drivers.embosser.embosser import Embosser, Printer, check_brf
from drivers.embosser.errors import (
    BadJob,
    EmbosserFault,
    EmbosserOffline,
    PaperJam,
    PaperOut,
)
from drivers.embosser.status import DeviceStatus, parse_status
from drivers.embosser.transport import JobResult, JobState, Transport, open_transport

__all__ = [
    "BadJob",
    "DeviceStatus",
    "Embosser",
    "EmbosserFault",
    "EmbosserOffline",
    "JobResult",
    "JobState",
    "PaperJam",
    "PaperOut",
    "Printer",
    "Transport",
    "check_brf",
    "open_transport",
    "parse_status",
]
