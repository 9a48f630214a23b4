"""Blocks of the audit hash chain and signed prune checkpoints: their bytes and hashes.

A block seals the records with ``first_id <= id <= last_id``. Its body lists which ids exist
(runs of consecutive ids: an id inside the range that is not listed was never committed),
each record's retention class and its 128-bit hash::

    body   = version(1) | n_classes(1) | (len(1) name)* | n_runs(4) | (start(8) length(4))*
             | n_class_runs(4) | (class_index(1) count(4))* | leaf(16) per record, in id order
    hash   = SHA-256("authd-audit-block-v1" | seq | first_id | last_id | count | at_min |
                     at_max | at_hi | sealed_at | SHA-256(body) | prev_hash | key_id)

Every block is signed; ``prev_hash`` links it to the block before (32 zero bytes for the first),
so the newest signed block vouches for the whole chain.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from authd.audit.records import LEAF_BYTES
from authd.storage.database import Row

GENESIS = bytes(32)
BODY_VERSION = 1
_BLOCK_DOMAIN = b"authd-audit-block-v1\x00"
_PRUNE_DOMAIN = b"authd-audit-prune-v1\x00"
BLOCK_COLUMNS = ("seq, first_id, last_id, record_count, at_min, at_max, at_hi, sealed_at, body,"
                 " body_digest, prev_hash, hash, key_id, signature")
PRUNE_COLUMNS = ("seq, pruned_at, through_block, compacted_through, cutoffs, removed, key_id,"
                 " signature")


class BodyError(ValueError):
    """A block body that cannot be decoded."""


@dataclass(frozen=True)
class Body:
    ids: tuple[int, ...]
    classes: tuple[str, ...]  # per record
    leaves: tuple[bytes, ...]  # per record

    def encode(self) -> bytes:
        names = sorted(set(self.classes))
        index = {name: i for i, name in enumerate(names)}
        out = bytearray([BODY_VERSION, len(names)])
        for name in names:
            raw = name.encode()
            out += bytes([len(raw)]) + raw
        runs = list(_runs(self.ids))
        out += struct.pack(">I", len(runs))
        for start, length in runs:
            out += struct.pack(">qI", start, length)
        class_runs = list(_class_runs(self.classes))
        out += struct.pack(">I", len(class_runs))
        for name, count in class_runs:
            out += struct.pack(">BI", index[name], count)
        out += b"".join(self.leaves)
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes) -> Body:
        try:
            return cls._decode(memoryview(raw))
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise BodyError(f"malformed block body: {exc}") from None

    @classmethod
    def _decode(cls, raw: memoryview) -> Body:
        if raw[0] != BODY_VERSION:
            raise BodyError(f"unknown block body version {raw[0]}")
        pos = 2
        names = []
        for _ in range(raw[1]):
            n = raw[pos]
            names.append(bytes(raw[pos + 1:pos + 1 + n]).decode())
            pos += 1 + n
        (n_runs,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        ids: list[int] = []
        for _ in range(n_runs):
            start, length = struct.unpack_from(">qI", raw, pos)
            pos += 12
            ids.extend(range(start, start + length))
        (n_class_runs,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        classes: list[str] = []
        for _ in range(n_class_runs):
            i, count = struct.unpack_from(">BI", raw, pos)
            pos += 5
            classes.extend([names[i]] * count)
        if len(classes) != len(ids) or len(raw) - pos != LEAF_BYTES * len(ids):
            raise BodyError("block body length does not match its ids")
        leaves = tuple(bytes(raw[pos + i * LEAF_BYTES:pos + (i + 1) * LEAF_BYTES])
                       for i in range(len(ids)))
        return cls(tuple(ids), tuple(classes), leaves)


def _class_runs(classes: Sequence[str]) -> Iterator[tuple[str, int]]:
    current, count = None, 0
    for name in classes:
        if name == current:
            count += 1
        else:
            if current is not None:
                yield current, count
            current, count = name, 1
    if current is not None:
        yield current, count


def _runs(ids: Sequence[int]) -> Iterator[tuple[int, int]]:
    start = prev = None
    for i in ids:
        if start is None:
            start = prev = i
        elif i == prev + 1:  # type: ignore[operator]
            prev = i
        else:
            yield start, prev - start + 1  # type: ignore[operator]
            start = prev = i
    if start is not None:
        yield start, prev - start + 1  # type: ignore[operator]


@dataclass(frozen=True)
class Block:
    seq: int
    first_id: int
    last_id: int
    record_count: int
    at_min: float
    at_max: float
    at_hi: float
    sealed_at: float
    body: bytes | None
    body_digest: bytes
    prev_hash: bytes
    hash: bytes
    key_id: str
    signature: bytes

    @classmethod
    def from_row(cls, row: Row) -> Block:
        return cls(int(row[0]), int(row[1]), int(row[2]), int(row[3]), float(row[4]),
                   float(row[5]), float(row[6]), float(row[7]),
                   None if row[8] is None else bytes(row[8]), bytes(row[9]), bytes(row[10]),
                   bytes(row[11]), row[12], bytes(row[13]))

    def computed_hash(self) -> bytes:
        return block_hash(self.seq, self.first_id, self.last_id, self.record_count, self.at_min,
                          self.at_max, self.at_hi, self.sealed_at, self.body_digest,
                          self.prev_hash, self.key_id)

    def row(self) -> tuple[object, ...]:
        return (self.seq, self.first_id, self.last_id, self.record_count, self.at_min,
                self.at_max, self.at_hi, self.sealed_at, self.body, self.body_digest,
                self.prev_hash, self.hash, self.key_id, self.signature)

    def head(self) -> dict[str, object]:
        """What a witness keeps of the head: enough to find and check it later."""
        return {"seq": self.seq, "last_id": self.last_id, "hash": self.hash.hex(),
                "sealed_at": self.sealed_at, "key_id": self.key_id,
                "signature": self.signature.hex()}


def block_hash(seq: int, first_id: int, last_id: int, count: int, at_min: float, at_max: float,
               at_hi: float, sealed_at: float, body_digest: bytes, prev_hash: bytes,
               key_id: str) -> bytes:
    h = hashlib.sha256(_BLOCK_DOMAIN)
    h.update(struct.pack(">qqqIdddd", seq, first_id, last_id, count, at_min, at_max, at_hi,
                         sealed_at))
    h.update(body_digest)
    h.update(prev_hash)
    h.update(key_id.encode())
    return h.digest()


@dataclass(frozen=True)
class PruneCheckpoint:
    seq: int
    pruned_at: float
    through_block: int
    compacted_through: int
    cutoffs: Mapping[str, float]
    removed: int
    key_id: str
    signature: bytes

    @classmethod
    def from_row(cls, row: Row) -> PruneCheckpoint:
        try:
            cutoffs = {str(k): float(v) for k, v in json.loads(row[4]).items()}
        except (ValueError, AttributeError, TypeError):
            cutoffs = {}
        return cls(int(row[0]), float(row[1]), int(row[2]), int(row[3]), cutoffs, int(row[5]),
                   row[6], bytes(row[7]))

    @property
    def cutoffs_text(self) -> str:
        return json.dumps(dict(sorted(self.cutoffs.items())), separators=(",", ":"))

    def digest(self) -> bytes:
        h = hashlib.sha256(_PRUNE_DOMAIN)
        h.update(struct.pack(">qdqqq", self.seq, self.pruned_at, self.through_block,
                             self.compacted_through, self.removed))
        h.update(self.cutoffs_text.encode())
        h.update(self.key_id.encode())
        return h.digest()

    def row(self) -> tuple[object, ...]:
        return (self.seq, self.pruned_at, self.through_block, self.compacted_through,
                self.cutoffs_text, self.removed, self.key_id, self.signature)
