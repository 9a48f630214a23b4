"""Frames (70 bytes) and their transport as 8-byte feature reports."""

from __future__ import annotations

import struct

from devices.hid_otp.constants import (
    FRAME_SIZE,
    LAST_FRAME_SEQ,
    REPORT_DATA_SIZE,
    SLOT_DATA_SIZE,
    SLOT_WRITE_FLAG,
)
from devices.hid_otp.crc import crc16

_FILLER = b"\0\0\0"


def build_frame(command: int, payload: bytes = b"") -> bytes:
    """Payload padded to 64 bytes, the command byte, the payload's CRC (LE), 3 filler bytes."""
    if len(payload) > SLOT_DATA_SIZE:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {SLOT_DATA_SIZE}")
    if not 0 <= command <= 0xFF:
        raise ValueError("command must be one byte")
    padded = payload.ljust(SLOT_DATA_SIZE, b"\0")
    return padded + struct.pack("<BH", command, crc16(padded)) + _FILLER


def frame_reports(frame: bytes) -> list[bytes]:
    """The feature reports that carry ``frame``: 7 data bytes then ``0x80 | sequence``.

    All-zero chunks are skipped, except the first and the last, which the device needs
    to start and to complete the frame.
    """
    if len(frame) != FRAME_SIZE:
        raise ValueError(f"a frame is {FRAME_SIZE} bytes, not {len(frame)}")
    reports = []
    for seq in range(LAST_FRAME_SEQ + 1):
        chunk = frame[seq * REPORT_DATA_SIZE : (seq + 1) * REPORT_DATA_SIZE]
        if seq in (0, LAST_FRAME_SEQ) or any(chunk):
            reports.append(chunk + bytes([SLOT_WRITE_FLAG | seq]))
    return reports
