"""The calls a native front end served on something this daemon lent it (a reader's card:
authd/smartcard/lending.py; a token login: authd/token/lending.py), told in a lease's
``LEASE_USED`` and ``LEASE_RETURN`` parts (call_link.proto): counted, timed and access-logged
as this daemon's own; and what both lendings keep of their leases (:class:`Leases`)."""

from __future__ import annotations

import math
import threading
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
    @property
    def id(self) -> int: ...
    @property
    def peer(self) -> LinkPeer: ...


L = TypeVar("L", bound=_Lent)


class Leases(Generic[L]):
    """The leases lent now, by what is lent (a reader's name, a login's handle), under one
    condition that tells the waiters whenever one ends."""

    def __init__(self) -> None:
        self._state = threading.Condition(threading.Lock())
        self._leases: dict[str, L] = {}

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
    """The ``served`` stream requests of ``part`` (a lent login's SignStream): counted in
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
