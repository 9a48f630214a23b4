"""Where printed and embossed cards go, and what the device said about the job."""

from __future__ import annotations

from dataclasses import dataclass

from devices.errors import BadRequest, WrongState
from drivers.embosser import (
    BadJob,
    Embosser,
    EmbosserFault,
    EmbosserOffline,
    JobState,
    PaperJam,
    PaperOut,
    Printer,
    Transport,
    open_transport,
)
from drivers.errors import DeviceTimeout, DriverError

STATE_COMPLETED = "completed"
STATE_SENT = "sent"
STATE_QUEUED = "queued"
STATE_FAILED = "failed"
STATE_PENDING = "pending"

FAILURE_NONE = ""
FAILURE_OFFLINE = "offline"
FAILURE_PAPER_JAM = "paper_jam"
FAILURE_PAPER_OUT = "paper_out"
FAILURE_FAULT = "fault"
FAILURE_TIMEOUT = "timeout"

_JOB_STATE = {
    JobState.COMPLETED: STATE_COMPLETED,
    JobState.SENT: STATE_SENT,
    JobState.QUEUED: STATE_QUEUED,
}


@dataclass(frozen=True)
class PrintOutcome:
    job_id: str
    state: str
    failure: str
    message: str
    device: str
    pages: int = 0
    bytes: int = 0

    @property
    def delivered(self) -> bool:
        return self.state != STATE_FAILED


def _transport(url: str, timeout: float, what: str) -> Transport | None:
    if not url:
        return None
    try:
        return open_transport(url, timeout)
    except BadJob as exc:
        raise BadRequest(f"security_card.{what}: {exc}") from None


class CardOutput:
    """The branch's embosser (braille cards) and printer (plain cards)."""

    def __init__(self, embosser_url: str, printer_url: str, timeout: float) -> None:
        self._embosser_t = _transport(embosser_url, timeout, "embosser")
        self._printer_t = _transport(printer_url, timeout, "printer")

    def require(self, braille: bool) -> None:
        if braille and self._embosser_t is None:
            raise WrongState("no braille embosser is configured at this node")
        if not braille and self._printer_t is None:
            raise WrongState("no card printer is configured at this node")

    def send(self, braille: bool, job_name: str, data: bytes) -> PrintOutcome:
        """Send the job; device failures come back as a failed outcome, not an exception."""
        self.require(braille)
        transport = self._embosser_t if braille else self._printer_t
        assert transport is not None
        try:
            if braille:
                result = Embosser(transport).emboss(job_name, data)
            else:
                result = Printer(transport).print_job(job_name, data)
        except DriverError as exc:
            return PrintOutcome(job_name, STATE_FAILED, _failure(exc), str(exc), transport.target)
        return PrintOutcome(
            result.job_id,
            _JOB_STATE[result.state],
            FAILURE_NONE,
            result.device_status,
            transport.target,
            result.pages,
            result.bytes_sent,
        )


def _failure(exc: DriverError) -> str:
    if isinstance(exc, PaperJam):
        return FAILURE_PAPER_JAM
    if isinstance(exc, PaperOut):
        return FAILURE_PAPER_OUT
    if isinstance(exc, EmbosserOffline):
        return FAILURE_OFFLINE
    if isinstance(exc, DeviceTimeout):
        return FAILURE_TIMEOUT
    if isinstance(exc, EmbosserFault):
        return FAILURE_FAULT
    return FAILURE_FAULT
