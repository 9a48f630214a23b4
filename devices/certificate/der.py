"""The few DER shapes the NPKI key file needs (ITU-T X.690): enough to write and read a
PKCS#8 EncryptedPrivateKeyInfo whose cipher (SEED) no general library here names."""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def sequence(*items: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(items))


def integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return tlv(INTEGER, body)


def octets(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def null() -> bytes:
    return tlv(NULL, b"")


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(OID, bytes(body))


@dataclass(frozen=True)
class Node:
    tag: int
    value: bytes

    def children(self) -> list[Node]:
        if self.tag != SEQUENCE:
            raise ValueError("not a SEQUENCE")
        return read_all(self.value)

    def as_int(self) -> int:
        if self.tag != INTEGER or not self.value:
            raise ValueError("not an INTEGER")
        return int.from_bytes(self.value, "big", signed=True)

    def as_oid(self) -> str:
        if self.tag != OID or not self.value:
            raise ValueError("not an OBJECT IDENTIFIER")
        first = self.value[0]
        arcs = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
        arc = 0
        for byte in self.value[1:]:
            arc = (arc << 7) | (byte & 0x7F)
            if not byte & 0x80:
                arcs.append(arc)
                arc = 0
        return ".".join(str(a) for a in arcs)

    def as_octets(self) -> bytes:
        if self.tag != OCTET_STRING:
            raise ValueError("not an OCTET STRING")
        return self.value


def read(data: bytes, offset: int = 0) -> tuple[Node, int]:
    """One element at ``offset``; returns it and the offset after it."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return Node(tag, data[pos:pos + length]), pos + length


def read_all(data: bytes) -> list[Node]:
    out, pos = [], 0
    while pos < len(data):
        node, pos = read(data, pos)
        out.append(node)
    return out


def read_one(data: bytes) -> Node:
    node, end = read(data)
    if end != len(data):
        raise ValueError("trailing bytes after DER")
    return node
