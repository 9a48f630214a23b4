"""Minimal BER-TLV for the virtual card (kept independent of the host-side code it tests)."""

from __future__ import annotations


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82, length >> 8, length & 0xFF])
    raise ValueError("TLV value too long")


def tlv(tag: int, value: bytes = b"") -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + encode_length(len(value)) + value


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a sequence of TLVs; raises ValueError on malformed input."""
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        tag = data[offset]
        offset += 1
        if tag & 0x1F == 0x1F:
            while True:
                if offset >= len(data):
                    raise ValueError("truncated tag")
                tag = (tag << 8) | data[offset]
                offset += 1
                if not data[offset - 1] & 0x80:
                    break
        if offset >= len(data):
            raise ValueError("truncated length")
        length = data[offset]
        offset += 1
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or offset + count > len(data):
                raise ValueError("bad length")
            length = int.from_bytes(data[offset : offset + count], "big")
            offset += count
        if offset + length > len(data):
            raise ValueError("truncated value")
        items.append((tag, data[offset : offset + length]))
        offset += length
    return items


def as_dict(data: bytes) -> dict[int, bytes]:
    return dict(parse(data))
