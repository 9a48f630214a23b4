"""The token bucket of authd/ratelimit.py, on a clock the test moves."""

from __future__ import annotations

import pytest

from authd import metrics
from authd.ratelimit import Rate, RateLimiter
from devices.errors import BadRequest, LimitReached


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(per_second: float, burst: int, **kw) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter("test.limit", "test calls", Rate(per_second, burst), clock=clock,
                       **kw), clock


def test_a_burst_then_the_rate():
    lim, clock = limiter(2, 3)
    assert [lim.allow("bank-a") for _ in range(4)] == [True, True, True, False]
    clock.now += 0.49
    assert not lim.allow("bank-a")
    clock.now += 0.02  # half a second: one token
    assert lim.allow("bank-a") and not lim.allow("bank-a")
    clock.now += 100  # refills to the burst, no more
    assert sum(lim.allow("bank-a") for _ in range(10)) == 3


def test_institutions_have_their_own_buckets():
    lim, _ = limiter(1, 2)
    assert [lim.allow("bank-a") for _ in range(3)] == [True, True, False]
    assert [lim.allow("bank-b") for _ in range(3)] == [True, True, False]


def test_refusal_is_resource_exhausted_and_counted_by_institution():
    lim, _ = limiter(1, 1)
    sample = "authd_rate_limited_total"
    before = metrics.value(sample, limit="test.limit", institution="bank-rl")
    lim.check("bank-rl")
    with pytest.raises(LimitReached, match="too many test calls from bank-rl"):
        lim.check("bank-rl")
    assert metrics.value(sample, limit="test.limit", institution="bank-rl") == before + 1
    assert 'authd_rate_limited_total{institution="bank-rl",limit="test.limit"}' in \
        metrics.render()


def test_rate_zero_is_no_limit():
    lim, _ = limiter(0, 0)
    assert not lim.enabled and all(lim.allow("bank-a") for _ in range(10_000))


def test_idle_buckets_are_forgotten_beyond_the_bound():
    lim, clock = limiter(10, 5, max_keys=3)
    for bank in ("a", "b", "c"):
        lim.allow(bank)
    clock.now += 1  # all refilled
    lim.allow("d")
    assert set(lim._buckets) == {"d"}
    for bank in ("e", "f", "g", "h"):  # all busy: the oldest half goes, the bound holds
        lim.allow(bank)
    assert len(lim._buckets) <= 3


@pytest.mark.parametrize("rate", [Rate(-1, 1), Rate(float("nan"), 1), Rate(1, 0),
                                  Rate(1, 2.5), Rate("10", 1), Rate(True, 1)])  # type: ignore[arg-type]
def test_bad_settings_are_refused(rate):
    with pytest.raises(BadRequest):
        rate.check("otp.verify_per_second")
