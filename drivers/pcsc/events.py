"""Reader and card events, and the snapshot diff that produces them (no pyscard needed)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, unique


@unique
class EventKind(Enum):
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    SERVICE_UP = "service_up"
    SERVICE_DOWN = "service_down"


@dataclass(frozen=True)
class ReaderEvent:
    kind: EventKind
    reader: str = ""
    atr: bytes = b""


@dataclass(frozen=True)
class Snapshot:
    """What pcscd reports: reader name -> ATR of the card in it (None: no card)."""

    available: bool
    readers: dict[str, bytes | None]


def diff(old: Snapshot, new: Snapshot) -> list[ReaderEvent]:
    """Events that turn `old` into `new` (removals first, then additions)."""
    events: list[ReaderEvent] = []
    for name, atr in old.readers.items():
        new_atr = new.readers.get(name, None)
        gone = name not in new.readers
        if atr is not None and (gone or new_atr != atr):
            events.append(ReaderEvent(EventKind.CARD_REMOVED, name, atr))
        if gone:
            events.append(ReaderEvent(EventKind.READER_REMOVED, name))
    if old.available and not new.available:
        events.append(ReaderEvent(EventKind.SERVICE_DOWN))
    if new.available and not old.available:
        events.append(ReaderEvent(EventKind.SERVICE_UP))
    for name, atr in new.readers.items():
        if name not in old.readers:
            events.append(ReaderEvent(EventKind.READER_ADDED, name))
        if atr is not None and old.readers.get(name) != atr:
            events.append(ReaderEvent(EventKind.CARD_INSERTED, name, atr))
    return events
