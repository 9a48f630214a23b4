"""Prometheus rendering of authd's counters and histograms."""

from __future__ import annotations

from authd.metrics import Registry


def test_counts_past_a_million_render_exactly() -> None:
    registry = Registry()
    calls = registry.counter("test_calls_total", "calls")
    calls.inc(1_234_567, method="/a")
    latency = registry.histogram("test_seconds", "latency", buckets=(0.5,))
    for _ in range(3):
        latency.observe(0.25, method="/a")
    text = registry.render()
    assert 'test_calls_total{method="/a"} 1234567\n' in text
    assert 'test_seconds_count{method="/a"} 3\n' in text
    assert 'test_seconds_sum{method="/a"} 0.75\n' in text
