"""The calls a native front end served on something this daemon lent it (a reader's card:
authd/smartcard/lending.py; a token login: authd/token/lending.py), told in a lease's
``LEASE_USED`` and ``LEASE_RETURN`` parts (call_link.proto): counted, timed and access-logged
as this daemon's own; and what both lendings keep of their leases (:class:`Leases`)."""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from google.rpc import code_pb2

from authd.call_link import LinkPeer
from authd.context import Caller
from authd.interceptors import access_logged, access_logged_item, access_logged_timed
from authd.metrics import LATENCY_BUCKETS, LENT_STREAM_REQUEST_SECONDS, LENT_STREAM_REQUESTS
from authd.v1 import call_link_pb2

# The caller a lease is lent to, as the front end describes it in every linked call.
CALLER_FIELDS = ("institution", "role", "subject", "has_operator", "operator_metadata")


class _Lent(Protocol):
    id: int
    peer: LinkPeer
    caller: Caller
    method: str
    served: int
    streamed: int  # requests of the stream method served on it
    asked: bool  # recalled already


L = TypeVar("L", bound=_Lent)


class Leases(ABC, Generic[L]):
    """The leases lent now, by what is lent (a reader's name, a login's handle: :meth:`_key`),
    under one condition that tells the waiters whenever one ends; and the front end's parts
    for them (``LEASE_USED``, ``LEASE_RETURN``, on the link's reader thread). A lease may lend
    the requests of one streaming method too (``stream_method``: a token's SignStream, a
    card's TransmitStream): its parts tell those, counted as stream requests, not calls."""

    def __init__(self, stream_method: str = "") -> None:
        self._state = threading.Condition(threading.Lock())
        self._leases: dict[str, L] = {}
        self._next_id = 0
        self.stream_method = stream_method
        self.lent_total = 0  # leases granted
        self.served_total = 0  # calls served on the leases, as told
        self.streamed_total = 0  # stream requests served on the leases, as told

    @abstractmethod
    def _key(self, lease: L) -> str:
        """What ``lease`` lends (its key in the table)."""

    @abstractmethod
    def _recall(self, lease: L) -> None:
        """Asks the front end for ``lease`` back (answered by its LEASE_RETURN)."""

    def _using(self, lease: L) -> None:
        """Calls were served on ``lease`` (told now): e.g. its login was used."""

    def lent(self, key: str) -> bool:
        with self._state:
            return key in self._leases

    def _ask_back(self, key: str) -> L | None:
        """The lease of ``key``, asked back unless it was already (None: not lent)."""
        with self._state:
            lease = self._leases.get(key)
            if lease is None:
                return None
            ask = not lease.asked
            lease.asked = True
        if ask:
            self._recall(lease)
        return lease

    def _back(self, key: str, lease: L, timeout: float) -> bool:
        """Waits until ``lease`` of ``key`` ended (at most ``timeout``; then it is forgotten,
        and False)."""
        with self._state:
            if self._state.wait_for(lambda: self._leases.get(key) is not lease,
                                    timeout=timeout):
                return True
            if self._leases.get(key) is lease:
                del self._leases[key]
            return False

    def lost(self, peer: LinkPeer) -> None:
        """The link to ``peer`` went away: its leases ended with it."""
        with self._state:
            for key in [k for k, lease in self._leases.items() if lease.peer is peer]:
                del self._leases[key]
            self._state.notify_all()

    def _find(self, peer: LinkPeer, lease_id: int) -> L | None:
        with self._state:
            for lease in self._leases.values():
                if lease.id == lease_id and lease.peer is peer:
                    return lease
        return None

    def used(self, peer: LinkPeer, part: call_link_pb2.LinkedCall) -> None:
        self._told(self._find(peer, part.id), part)

    def returned(self, peer: LinkPeer, part: call_link_pb2.LinkedCall) -> None:
        lease = self._find(peer, part.id)
        self._told(lease, part)
        if lease is None:
            return
        with self._state:
            if self._leases.get(self._key(lease)) is lease:
                del self._leases[self._key(lease)]
            self._state.notify_all()
        self._given_back(lease, part)

    def _given_back(self, lease: L, part: call_link_pb2.LinkedCall) -> None:
        """``lease`` ended with the front end's ``part`` (e.g. logged)."""

    def _told(self, lease: L | None, part: call_link_pb2.LinkedCall) -> None:
        """The lease's calls served by the front end: counted, timed and logged as this
        daemon's (each with its bucket's mean duration: the histogram's buckets and sum are
        exactly the calls')."""
        if lease is None or part.served <= 0:
            return
        self._using(lease)
        self._count(lease, part)

    def _count(self, lease: L, part: call_link_pb2.LinkedCall) -> None:
        """Logs and counts the calls ``part`` tells (one or more) as served on ``lease``; a
        part of the stream method tells lent stream requests (not calls)."""
        if self.stream_method and part.method == self.stream_method:
            log_streamed(part.method, lease.caller, part)
            with self._state:  # counted once logged: what the counts say is in the metrics
                lease.streamed += part.served
                self.streamed_total += part.served
            return
        log_served(lease.method, lease.caller, part)
        with self._state:
            lease.served += part.served
            self.served_total += part.served


def log_served(method: str, caller: Caller, part: call_link_pb2.LinkedCall) -> None:
    """The ``served`` calls of ``part``, each observed in ``authd_rpc_seconds`` and the access
    log at its bucket's mean duration (the histogram's buckets and sum are exactly the
    calls')."""
    timed = 0
    for took, calls in _durations(part):
        for _ in range(calls):
            access_logged_timed(method, caller, code_pb2.OK, took)
        timed += calls
    for _ in range(part.served - timed):  # told without their durations
        access_logged(method, caller, code_pb2.OK, None)


def log_streamed(method: str, caller: Caller, part: call_link_pb2.LinkedCall) -> None:
    """The ``served`` stream requests of ``part`` (a lent login's SignStream, a lent card's
    TransmitStream): counted in
    ``authd_lent_stream_requests_total``, each observed in
    ``authd_lent_stream_request_seconds`` and the access log at its bucket's mean duration.
    Not calls: a stream is one call, and one whose requests were all lent never came here."""
    LENT_STREAM_REQUESTS.labels(method).inc(part.served)
    timer = LENT_STREAM_REQUEST_SECONDS.labels(method)
    for took, calls in _durations(part):
        for _ in range(calls):
            timer.observe(took)
            access_logged_item(method, caller, took)


def _durations(part: call_link_pb2.LinkedCall) -> Iterator[tuple[float, int]]:
    """Each bucket's mean duration and its calls, as ``part`` tells them."""
    told = zip(part.bucket_calls, part.bucket_seconds, strict=False)
    for bucket, (calls, seconds) in zip(range(len(LATENCY_BUCKETS) + 1), told, strict=False):
        if calls:
            yield _within(bucket, seconds / calls), calls


def _within(bucket: int, seconds: float) -> float:
    """``seconds`` kept inside latency bucket ``bucket`` (a mean of values in it, which
    rounding may have put on the wrong side of a bound)."""
    low = LATENCY_BUCKETS[bucket - 1] if bucket > 0 else -math.inf
    high = LATENCY_BUCKETS[bucket] if bucket < len(LATENCY_BUCKETS) else math.inf
    return min(max(seconds, math.nextafter(low, math.inf)), high)
