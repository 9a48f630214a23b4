"""BER-TLV encoding as used by PIV (SP 800-73-4 part 2; ISO 7816-4 annex D)."""

from __future__ import annotations

from dataclasses import dataclass

from devices.smartcard.errors import BadResponseError


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length <= 0xFF:
        return bytes([0x81, length])
    if length <= 0xFFFF:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ValueError("TLV value longer than 65535 bytes")


def tag_bytes(tag: int) -> bytes:
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes

    def __bytes__(self) -> bytes:
        return tag_bytes(self.tag) + encode_length(len(self.value)) + self.value

    @classmethod
    def parse_all(cls, data: bytes) -> list[Tlv]:
        """Parse consecutive TLVs; BadResponseError when the bytes are not well formed."""
        items: list[Tlv] = []
        offset, end = 0, len(data)
        while offset < end:
            tag = data[offset]
            offset += 1
            if tag & 0x1F == 0x1F:
                while True:
                    if offset >= end:
                        raise BadResponseError("truncated TLV tag")
                    byte = data[offset]
                    tag = (tag << 8) | byte
                    offset += 1
                    if not byte & 0x80:
                        break
            if offset >= end:
                raise BadResponseError("truncated TLV length")
            length = data[offset]
            offset += 1
            if length & 0x80:
                count = length & 0x7F
                if not 1 <= count <= 3 or offset + count > end:
                    raise BadResponseError("invalid TLV length")
                length = int.from_bytes(data[offset : offset + count], "big")
                offset += count
            if offset + length > end:
                raise BadResponseError("TLV value runs past the end of the data")
            items.append(cls(tag, data[offset : offset + length]))
            offset += length
        return items


def tlv(tag: int, value: bytes = b"") -> bytes:
    return bytes(Tlv(tag, value))


def parse_dict(data: bytes) -> dict[int, bytes]:
    return {item.tag: item.value for item in Tlv.parse_all(data)}


def unwrap(data: bytes, tag: int) -> bytes:
    """The value of the single expected outer TLV `tag`."""
    items = Tlv.parse_all(data)
    if not items or items[0].tag != tag:
        raise BadResponseError(f"expected tag {tag:X} in the card's answer")
    return items[0].value
