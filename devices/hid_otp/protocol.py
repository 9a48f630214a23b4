"""The frame protocol over 8-byte feature reports: sending, flag waiting, reading replies.

The host reads the status report to learn the programming sequence, sends a frame in
chunks (waiting before each one until the device has cleared its write flag), then polls:
- ``0x40 | seq`` reports carry response data, sequence 0, 1, 2, ...; when the sequence
  returns to 0 the transfer is complete and the host resets the read state;
- a report with the flag byte 0 is a status report: a configuration command succeeded if
  the programming sequence advanced (or fell to 0 when no valid configuration remains);
- other flag values mean "busy" (write flag) or "waiting for a touch" (0x20 | seconds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from devices.hid_otp.constants import (
    CONFIG_STATUS_MASK,
    DUMMY_REPORT_WRITE,
    FEATURE_REPORT_SIZE,
    REPORT_DATA_SIZE,
    RESP_PENDING_FLAG,
    RESP_TIMEOUT_WAIT_FLAG,
    SEQUENCE_MASK,
    SLOT_WRITE_FLAG,
    STATUS_BYTE,
    STATUS_OFFSET_PGM_SEQ,
    STATUS_OFFSET_TOUCH_LOW,
)
from devices.hid_otp.crc import check_crc
from devices.hid_otp.errors import (
    CommandRejectedError,
    CrcMismatchError,
    MalformedReportError,
    ProtocolTimeoutError,
)
from devices.hid_otp.frame import build_frame, frame_reports

log = logging.getLogger(__name__)

RESET_REPORT = b"\0" * REPORT_DATA_SIZE + bytes([DUMMY_REPORT_WRITE])


class OtpConnection(Protocol):
    """The seam: 8-byte feature reports out and in."""

    def send(self, report: bytes) -> None: ...

    def receive(self) -> bytes: ...


@dataclass(frozen=True)
class Timeouts:
    write_ready: float = 1.0  # device clearing its write flag after a report
    response: float = 2.0  # device answering a command (processing time)
    touch: float = 16.0  # device waiting for a touch (it gives up after ~15 s)
    poll_max: float = 0.02  # longest sleep between two status polls


@dataclass(frozen=True)
class Reply:
    """Either response data (with its CRC and padding) or an updated status block."""

    data: bytes | None = None
    status: bytes | None = None


class OtpProtocol:
    def __init__(self, connection: OtpConnection, timeouts: Timeouts | None = None) -> None:
        self.connection = connection
        self.timeouts = timeouts or Timeouts()

    def receive(self) -> bytes:
        report = self.connection.receive()
        if len(report) != FEATURE_REPORT_SIZE:
            raise MalformedReportError(
                f"feature report of {len(report)} bytes, expected {FEATURE_REPORT_SIZE}"
            )
        return report

    def read_status(self) -> bytes:
        """The 6-byte status block: version (3), programming sequence, touch level (LE)."""
        return self.receive()[1:STATUS_BYTE]

    def reset(self) -> None:
        """Leave the read mode (abort a pending response)."""
        self.connection.send(RESET_REPORT)

    def transceive(self, command: int, payload: bytes = b"") -> Reply:
        frame = build_frame(command, payload)
        prog_seq = self.receive()[STATUS_OFFSET_PGM_SEQ]
        for report in frame_reports(frame):
            self._await_ready_to_write()
            self.connection.send(report)
        return self._read_reply(command, prog_seq)

    def send_and_receive(self, command: int, payload: bytes, expected_len: int) -> bytes:
        """A command that answers data: check the CRC over data + CRC, return the data."""
        reply = self.transceive(command, payload)
        if reply.data is None:
            raise CommandRejectedError(command, "the device gave no response")
        if len(reply.data) < expected_len + 2:
            raise MalformedReportError(
                f"response of {len(reply.data)} bytes, expected {expected_len} + CRC"
            )
        if not check_crc(reply.data[: expected_len + 2]):
            raise CrcMismatchError(command)
        return reply.data[:expected_len]

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.timeouts.poll_max, 0.0005 * (2**attempt)))

    def _await_ready_to_write(self) -> None:
        deadline = time.monotonic() + self.timeouts.write_ready
        attempt = 0
        while self.receive()[STATUS_BYTE] & SLOT_WRITE_FLAG:
            if time.monotonic() > deadline:
                raise ProtocolTimeoutError("clearing its write flag", self.timeouts.write_ready)
            self._sleep(attempt)
            attempt += 1

    def _read_reply(self, command: int, prog_seq: int) -> Reply:
        response = bytearray()
        seq = 0
        waited_for_touch = False
        start = time.monotonic()
        deadline = start + self.timeouts.response
        attempt = 0
        try:
            while True:
                report = self.receive()
                flags = report[STATUS_BYTE]
                if flags & RESP_PENDING_FLAG:
                    got = flags & SEQUENCE_MASK
                    if got == seq:
                        response += report[:REPORT_DATA_SIZE]
                        seq += 1
                        continue
                    if got == 0 and response:  # wrapped to 0: transfer complete
                        self.reset()
                        return Reply(data=bytes(response))
                    if got > seq:
                        raise MalformedReportError(
                            f"response chunk {got} arrived before chunk {seq}"
                        )
                    continue  # a repeated chunk: read again
                if flags == 0:
                    if response:
                        raise MalformedReportError("response transfer ended early")
                    return self._status_reply(command, prog_seq, report, waited_for_touch)
                if flags & RESP_TIMEOUT_WAIT_FLAG and not waited_for_touch:
                    waited_for_touch = True
                    deadline = time.monotonic() + self.timeouts.touch
                if time.monotonic() > deadline:
                    phase = "waiting for a touch" if waited_for_touch else "processing"
                    seconds = self.timeouts.touch if waited_for_touch else self.timeouts.response
                    self._reset_quietly()
                    raise ProtocolTimeoutError(phase, seconds)
                self._sleep(attempt)
                attempt += 1
        except (MalformedReportError, CrcMismatchError):
            self._reset_quietly()
            raise

    def _status_reply(
        self, command: int, prog_seq: int, report: bytes, waited_for_touch: bool
    ) -> Reply:
        next_seq = report[STATUS_OFFSET_PGM_SEQ]
        no_valid_config = report[STATUS_OFFSET_TOUCH_LOW] & CONFIG_STATUS_MASK == 0
        advanced = next_seq == (prog_seq + 1) & 0xFF
        if advanced or (prog_seq > 0 and next_seq == 0 and no_valid_config):
            return Reply(status=report[1:STATUS_BYTE])
        if waited_for_touch:
            raise ProtocolTimeoutError("waiting for a touch", self.timeouts.touch)
        raise CommandRejectedError(command)

    def _reset_quietly(self) -> None:
        try:
            self.reset()
        except Exception:
            log.debug("reset after a failed transfer also failed", exc_info=True)
