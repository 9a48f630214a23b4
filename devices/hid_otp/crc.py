"""CRC-16 of the YubiKey protocol: reflected polynomial 0x8408, initial value 0xFFFF.

A block followed by the one's complement of its CRC (little-endian) leaves the residual
0xF0B8 (``CRC_OK_RESIDUAL``); frames carry the plain CRC of their payload.
"""

from __future__ import annotations

import struct

CRC_OK_RESIDUAL = 0xF0B8
_POLY = 0x8408


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def check_crc(data: bytes) -> bool:
    """True if ``data`` ends with the complemented CRC of what precedes it."""
    return crc16(data) == CRC_OK_RESIDUAL


def append_crc(data: bytes) -> bytes:
    """``data`` followed by its complemented CRC, little-endian (a self-checking block)."""
    return data + struct.pack("<H", ~crc16(data) & 0xFFFF)
