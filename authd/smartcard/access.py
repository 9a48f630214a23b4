"""Exclusive card connections per reader: opened on demand, reused while busy, released idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from drivers.errors import DriverError
from drivers.pcsc.connection import PcscConnection
from drivers.pcsc.errors import CardResetError

T = TypeVar("T")


@dataclass
class _Holder:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connection: PcscConnection | None = None
    last_used: float = 0.0


class CardAccess:
    """Serializes work per reader on one exclusive connection.

    The connection stays open between calls (a burst of APDUs pays the PC/SC connect once) and
    is released after `idle_seconds` without use, when the card is removed, or on any driver
    error, so other applications (OpenSC, a card printer) can use the card in between.
    """

    def __init__(self, idle_seconds: float = 2.0) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._holders: dict[str, _Holder] = {}

    def _holder(self, reader: str) -> _Holder:
        with self._lock:
            return self._holders.setdefault(reader, _Holder())

    def run(self, reader: str, work: Callable[[PcscConnection], T]) -> T:
        holder = self._holder(reader)
        with holder.lock:
            for attempt in (1, 2):
                if holder.connection is None or holder.connection.closed:
                    holder.connection = PcscConnection(reader)
                try:
                    result = work(holder.connection)
                except CardResetError:
                    self._drop(holder)
                    if attempt == 2:
                        raise
                    continue  # another application reset the card: reconnect once
                except DriverError:
                    self._drop(holder)
                    raise
                holder.last_used = time.monotonic()
                return result
        raise AssertionError("unreachable")

    def release(self, reader: str) -> None:
        holder = self._holder(reader)
        with holder.lock:
            self._drop(holder)

    def release_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            holders = list(self._holders.values())
        for holder in holders:
            if holder.connection is None or now - holder.last_used < self.idle_seconds:
                continue
            if holder.lock.acquire(blocking=False):
                try:
                    if now - holder.last_used >= self.idle_seconds:
                        self._drop(holder)
                finally:
                    holder.lock.release()

    def close(self) -> None:
        with self._lock:
            holders = list(self._holders.values())
        for holder in holders:
            with holder.lock:
                self._drop(holder)

    @staticmethod
    def _drop(holder: _Holder) -> None:
        connection, holder.connection = holder.connection, None
        if connection is not None:
            try:
                connection.close(reset=True)  # leave no PIN-verified state behind
            except DriverError:
                pass
