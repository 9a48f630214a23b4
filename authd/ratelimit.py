"""Per-institution rate limits: one token bucket per (limit, institution), in this process.

A limit allows ``per_second`` calls on average and bursts of up to ``burst`` calls; a call
beyond it is refused with RESOURCE_EXHAUSTED and counted in ``authd_rate_limited_total`` by
limit and institution. Limits slow serial enumeration and mass lockout from one institution's
credentials; they are not quotas.

Each server process keeps its own buckets (nothing is shared across processes or center
nodes): checking a limit costs a dictionary lookup and a little arithmetic, with no store
round trip on the verification path. A center of N nodes with P server processes each
therefore allows an institution N x P times the configured rate; configure the per-process
share (see docs/otp.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from authd import metrics
from devices.errors import BadRequest, LimitReached

MAX_INSTITUTIONS = 10_000  # buckets kept; full (idle) buckets are dropped beyond this


@dataclass(frozen=True)
class Rate:
    """``per_second`` on average, bursts of ``burst``; ``per_second = 0`` is no limit."""

    per_second: float
    burst: int

    def check(self, name: str) -> Rate:
        rate, burst = self.per_second, self.burst
        if (isinstance(rate, bool) or not isinstance(rate, int | float)
                or not math.isfinite(rate) or rate < 0):
            raise BadRequest(f"{name}: the rate must be a number >= 0 (0: no limit)")
        if rate and (isinstance(burst, bool) or not isinstance(burst, int)
                     or not 1 <= burst <= 1_000_000):
            raise BadRequest(f"{name}: the burst must be a whole number 1..1000000")
        return self


def rate_problems(rates: dict[str, Rate]) -> list[str]:
    """Configuration problems of named rates (for a settings section's ``problems``)."""
    out = []
    for name, rate in rates.items():
        try:
            rate.check(name)
        except BadRequest as exc:
            out.append(str(exc))
    return out


class RateLimiter:
    """Token buckets of one limit (e.g. ``otp.verify``), one per institution.

    ``check`` is cheap enough for the OTP verification path: one lock, one dict lookup."""

    def __init__(self, name: str, what: str, rate: Rate,
                 clock: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_INSTITUTIONS) -> None:
        self.name = name
        self.what = what  # "OTP verifications", for the message
        self.rate = rate.check(name)
        self._per_second = float(rate.per_second)
        self._burst = float(rate.burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # institution -> [tokens, last refill]
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._per_second > 0

    def allow(self, institution: str) -> bool:
        """Take one token of ``institution``'s bucket; False when it is empty."""
        if not self._per_second:
            return True
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(institution)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._drop_full(now)
                bucket = self._buckets[institution] = [self._burst, now]
            tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._per_second)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            return False

    def check(self, institution: str) -> None:
        """Raise LimitReached (and count it) when ``institution`` is over the limit."""
        if self.allow(institution):
            return
        metrics.RATE_LIMITED.labels(limit=self.name, institution=institution).inc()
        raise LimitReached(
            f"too many {self.what} from {institution}: the limit is "
            f"{self.rate.per_second:g}/s (bursts of {self.rate.burst}) per server process; "
            "retry later")

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled (a new bucket starts full: nothing changes)."""
        refill = self._burst / self._per_second
        idle = [k for k, (_, last) in self._buckets.items() if now - last >= refill]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:  # all busy: the oldest go
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[
                    :len(self._buckets) // 2]:
                del self._buckets[key]
