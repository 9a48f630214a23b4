"""Readers' cards lent to the native front end, each for one caller (docs/smartcard.md, "The
card lent to authd-front").

After ``lend_after_calls`` linked Transmits in a row from one caller on one reader — unary
calls alone on the link, or TransmitStream messages of one APDU that came to an idle stream
(none leaving a security state), each answered on the link's thread — the daemon lets go of the
card (``SCARD_LEAVE_CARD``: its state stays) and lends it with that call's answer, or that
message's (docs/smartcard.md, "The card lent to a TransmitStream"): authd-front connects to it
exclusively and sends that caller's next Transmits on that reader, and its TransmitStream
messages, to pcscd itself. Each reader has its own lease: several readers may be lent at once,
each to its own caller. The daemon keeps the leases: which reader, which caller (exactly as the
front end described it, checked here once), the lease's calls (told in batches with their
durations as counts per bucket of ``authd_rpc_seconds``, whose bounds go with the lease;
counted, timed and logged as its own), and taking the card back — whenever anything else needs
the card (another caller, a PIV call, an APDU that leaves a security state), the reader's
thread asks for it back and waits until the front end has disconnected, then connects again. A
card removed or a reader gone is asked back too. The front end gives the card back itself after
``idle_release_seconds`` unused, with a card reset (the lease ended for good), and on any PC/SC
error, then sends the call the daemon's way. A connection to the front end that goes away ends
its leases (pcscd releases a dead client's card).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from authd.call_link import LinkPeer, current_call, current_peer
from authd.context import Caller, current_caller
from authd.lent_calls import CALLER_FIELDS, Leases
from authd.metrics import LATENCY_BUCKETS
from authd.v1 import call_link_pb2

log = logging.getLogger(__name__)

# How long the reader's thread waits for the front end to give a card back.
RECALL_SECONDS = 5.0

# The caller a lease is for, exactly as the front end described it: the fields of a
# LinkedCall that a CardLease repeats, and the key of a caller's run of calls on a reader.
def _caller_of(call: call_link_pb2.LinkedCall) -> tuple[object, ...]:
    return tuple(getattr(call, name) for name in CALLER_FIELDS)


@dataclass
class _Lease:
    id: int
    reader: str
    peer: LinkPeer
    caller: Caller
    method: str
    served: int = 0
    streamed: int = 0  # TransmitStream messages served on it
    asked: bool = False  # asked back already


class Lending(Leases[_Lease]):
    """The leases of one method's cards (SmartcardService/Transmit), on every reader, and, if
    given, the messages of one streaming method (SmartcardService/TransmitStream) on them."""

    def __init__(self, method: str, lend_after: int, idle_seconds: float, max_apdu_bytes: int,
                 security_ins: frozenset[int], stream_method: str = "") -> None:
        self.method = method
        self.lend_after = lend_after
        self._limits = call_link_pb2.CardLease(
            idle_ms=max(1, int(idle_seconds * 1000)), max_apdu_bytes=max_apdu_bytes,
            security_ins=bytes(sorted(security_ins)), seconds_bounds=LATENCY_BUCKETS,
            method=method, stream_method=stream_method)
        super().__init__(stream_method)
        self._streaks: dict[str, tuple[tuple[object, ...], int]] = {}

    def wants(self, reader: str) -> bool:
        """Counts this linked call (or stream message: its stream's opening is the current
        call, with its caller) in its caller's run on ``reader``: True when the card should be
        lent with its answer (the run is long enough, a front end is there)."""
        call = current_call()
        if self.lend_after <= 0 or call is None or current_peer() is None:
            return False
        key = _caller_of(call)
        with self._state:
            if reader in self._leases:
                return False
            previous = self._streaks.get(reader)
            count = previous[1] + 1 if previous is not None and previous[0] == key else 1
            self._streaks[reader] = (key, count)
            return count >= self.lend_after

    def interrupt(self, reader: str) -> None:
        """A call on ``reader`` that does not count in a run (a security state, a batch)."""
        with self._state:
            self._streaks.pop(reader, None)

    def grant(self, reader: str) -> call_link_pb2.CardLease | None:
        """Records the lease of ``reader``'s card, let go of just now, to the current linked
        call's front end and caller; the lease to answer with (None: no front end)."""
        call = current_call()
        peer = current_peer()
        if call is None or peer is None or not peer.connected:
            return None
        with self._state:
            self._next_id += 1
            # Of the unary method also when a stream's message lends it: its calls are those.
            lease = _Lease(self._next_id, reader, peer, current_caller(), self.method)
            self._leases[reader] = lease
            self._streaks.pop(reader, None)
            self.lent_total += 1
        out = call_link_pb2.CardLease()
        out.CopyFrom(self._limits)
        out.id = lease.id
        out.reader = reader
        for name, value in zip(CALLER_FIELDS, _caller_of(call), strict=True):
            setattr(out, name, value)
        return out

    def take_back(self, reader: str) -> None:
        """On the reader's thread, before it connects: a lent card is asked back and waited
        for (at most RECALL_SECONDS; then the lease is forgotten and connecting says whether
        the card is free)."""
        lease = self._ask_back(reader)
        if lease is not None and not self._back(reader, lease, RECALL_SECONDS):
            log.warning("the front end did not give the card in %r back in time", reader)

    def recall(self, reader: str) -> None:
        """Asks for ``reader``'s card back without waiting (the card was removed)."""
        self._ask_back(reader)

    # -- the front end's parts (the link's reader thread: Leases) -----------------------------
    def _key(self, lease: _Lease) -> str:
        return lease.reader

    def _recall(self, lease: _Lease) -> None:
        lease.peer.recall(lease.id)

    def _given_back(self, lease: _Lease, part: call_link_pb2.LinkedCall) -> None:
        log.debug("the front end gave the card in %r back", lease.reader,
                  extra={"fields": {"lease": part.id, "calls": lease.served,
                                    "streamed": lease.streamed, "reset": part.reset}})
