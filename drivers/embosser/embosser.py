"""The embosser: sends BRF jobs and reports what the device said."""

from __future__ import annotations

from drivers.embosser.errors import BadJob
from drivers.embosser.status import DeviceStatus
from drivers.embosser.transport import JobResult, Transport, check_size, open_transport

# Braille ASCII (0x20-0x5F, lower case tolerated) plus CR, LF and form feed.
_BRF_BYTES = frozenset(range(0x20, 0x60)) | frozenset(range(0x60, 0x7B)) | {0x0D, 0x0A, 0x0C}


def check_brf(data: bytes) -> None:
    check_size(data)
    bad = set(data) - _BRF_BYTES
    if bad:
        raise BadJob("job is not BRF (bytes outside Braille ASCII)")


class Embosser:
    """A braille embosser reached through a transport (raw socket, device file, queue)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def open(cls, url: str, timeout: float = 10.0) -> Embosser:
        return cls(open_transport(url, timeout))

    @property
    def target(self) -> str:
        return self.transport.target

    def emboss(self, job_name: str, brf: bytes) -> JobResult:
        """Send one BRF document; raises EmbosserOffline, PaperOut, PaperJam, ..."""
        check_brf(brf)
        return self.transport.submit(job_name, brf)

    def status(self) -> DeviceStatus | None:
        return self.transport.status()


class Printer:
    """An ink printer for plain security cards: the same transports, any job bytes."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def open(cls, url: str, timeout: float = 10.0) -> Printer:
        return cls(open_transport(url, timeout))

    @property
    def target(self) -> str:
        return self.transport.target

    def print_job(self, job_name: str, data: bytes) -> JobResult:
        check_size(data)
        return self.transport.submit(job_name, data)

    def status(self) -> DeviceStatus | None:
        return self.transport.status()
