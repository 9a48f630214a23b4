"""The calls a native front end served on something this daemon lent it (a reader's card:
authd/smartcard/lending.py; a token login: authd/token/lending.py), told in a lease's
``LEASE_USED`` and ``LEASE_RETURN`` parts (call_link.proto): counted, timed and access-logged
as this daemon's own."""

from __future__ import annotations

import math

from google.rpc import code_pb2

from authd.context import Caller
from authd.interceptors import access_logged, access_logged_timed
from authd.metrics import LATENCY_BUCKETS
from authd.v1 import call_link_pb2


def log_served(method: str, caller: Caller, part: call_link_pb2.LinkedCall) -> None:
    """The ``served`` calls of ``part``, each observed in ``authd_rpc_seconds`` and the access
    log at its bucket's mean duration (the histogram's buckets and sum are exactly the
    calls')."""
    timed = 0
    told = zip(part.bucket_calls, part.bucket_seconds, strict=False)
    for bucket, (calls, seconds) in zip(range(len(LATENCY_BUCKETS) + 1), told, strict=False):
        took = _within(bucket, seconds / calls) if calls else 0.0
        for _ in range(calls):
            access_logged_timed(method, caller, code_pb2.OK, took)
        timed += calls
    for _ in range(part.served - timed):  # told without their durations
        access_logged(method, caller, code_pb2.OK, None)


def _within(bucket: int, seconds: float) -> float:
    """``seconds`` kept inside latency bucket ``bucket`` (a mean of values in it, which
    rounding may have put on the wrong side of a bound)."""
    low = LATENCY_BUCKETS[bucket - 1] if bucket > 0 else -math.inf
    high = LATENCY_BUCKETS[bucket] if bucket < len(LATENCY_BUCKETS) else math.inf
    return min(max(seconds, math.nextafter(low, math.inf)), high)
