"""Embosser and printer errors, reported back to the teller."""

from __future__ import annotations

from drivers.errors import DeviceAbsent, DeviceIOError


class EmbosserOffline(DeviceAbsent):
    """The embosser or printer does not answer (switched off, unplugged, queue down)."""


class EmbosserFault(DeviceIOError):
    """The device took the job but reports a fault; ``code`` is its status code."""

    reason = "fault"

    def __init__(self, message: str, code: int = 0, display: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.display = display


class PaperOut(EmbosserFault):
    reason = "paper_out"


class PaperJam(EmbosserFault):
    reason = "paper_jam"


class BadJob(DeviceIOError):
    """The job data is not something this device prints (e.g. not BRF)."""
