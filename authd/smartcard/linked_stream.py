"""TransmitStream over the native front end's call link (authd/call_link.py): the same
answers as ``SmartcardServicer.TransmitStream`` — each request's APDUs sent as one Transmit
and answered in order, the stream ending at its first error with that error — without the
daemon's gRPC server. Each request goes to its reader's thread as a linked Transmit does
(``SmartcardService.transmit_then``), one after the other: a card's transaction rules are the
unary call's. A request that finds the stream idle (the one before it answered, none after it
yet: a client that waits for each answer) starts once the read of the link that brought it
was served (``settle``), and may be sent at once on the link's thread; such a request of one
APDU counts in its caller's run on the reader as a unary Transmit alone on the link does, and
its answer may lend the card to the front end (authd/smartcard/lending.py; docs/smartcard.md,
"The card lent to a TransmitStream")."""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authd.call_link import StreamOut
from authd.smartcard import convert
from authd.v1 import call_link_pb2

if TYPE_CHECKING:
    from authd.smartcard.service import SmartcardService


@dataclass
class LinkedTransmitStream:
    """One linked TransmitStream: a request is sent once the one before it was answered."""

    service: Callable[[], SmartcardService]  # raises while smartcard support is missing
    out: StreamOut
    # Reentrant: a reader's thread may answer before transmit_then returns.
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _waiting: collections.deque[Any] = field(default_factory=collections.deque)
    _busy: bool = False  # a request is at its reader
    _closed: bool = False
    _over: bool = False

    def request(self, request: Any) -> None:
        with self._lock:
            if self._over:
                return
            self._waiting.append(request)
            if not self._busy and len(self._waiting) > 1:
                self._next()  # requests sent ahead: one after the other, on the reader's thread

    def half_close(self) -> None:
        with self._lock:
            self._closed = True
            if not self._busy and not self._waiting:
                self._end(None)

    def cancel(self) -> None:
        with self._lock:
            self._over = True
            self._waiting.clear()  # the request at its reader finishes; its answer is dropped

    def settle(self) -> None:
        """On the link's reader thread, once the read's parts were all given: the request
        waiting alone on an idle stream starts, and may be sent at once here and lend."""
        with self._lock:
            if not self._busy:
                self._next(alone=len(self._waiting) == 1)

    def _next(self, alone: bool = False) -> None:
        while self._waiting and not self._over:
            request = self._waiting.popleft()
            self._busy = True
            lease: list[call_link_pb2.CardLease] = []
            apdus = list(request.apdus)
            try:
                self.service().transmit_then(
                    request.reader, apdus, functools.partial(self._done, lease=lease),
                    may_wait=alone, lent=lease.append if alone and len(apdus) == 1 else None)
            except Exception as exc:  # bad APDUs, an unknown reader: before anything is sent
                self._busy = False
                self._end(exc)
            return

    def _done(self, responses: list[tuple[bytes, int]] | None,
              error: BaseException | None, *, lease: list[call_link_pb2.CardLease]) -> None:
        with self._lock:
            self._busy = False
            if self._over:
                return
            if error is not None or responses is None:
                self._end(error or RuntimeError("no answer"))
                return
            self.out.item(convert.responses_to_proto(responses),
                          lease=lease[0] if lease else None)
            if self._waiting:
                self._next()
            elif self._closed:
                self._end(None)

    def _end(self, error: BaseException | None) -> None:
        self._over = True
        self._waiting.clear()
        self.out.end(error)
