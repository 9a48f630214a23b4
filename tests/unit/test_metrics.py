"""authd's metrics as a scrape sees them (prometheus_client's exposition format)."""

from __future__ import annotations

import pytest

from authd import metrics


def test_counts_past_a_million_read_back_exactly() -> None:
    before = metrics.value("authd_rpcs_total", code="OK", method="/test.Metrics/A")
    metrics.RPCS.labels(code="OK", method="/test.Metrics/A").inc(1_234_567)
    text = metrics.render()
    line = next(line for line in text.splitlines()
                if line.startswith('authd_rpcs_total{code="OK",method="/test.Metrics/A"}'))
    assert float(line.rsplit(" ", 1)[1]) == before + 1_234_567
    for _ in range(3):
        metrics.RPC_SECONDS.labels(method="/test.Metrics/A").observe(0.25)
    assert metrics.value("authd_rpc_seconds_count", method="/test.Metrics/A") >= 3
    assert "authd_rpcs_created" not in text  # no creation-time series


def test_only_authd_metrics_are_served() -> None:
    text = metrics.render()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    assert names and all(name.startswith("authd_") for name in names)


def test_children_are_looked_up_once_and_count_into_their_metric() -> None:
    children = metrics.Children(metrics.RPCS)
    before = metrics.value("authd_rpcs_total", code="NOT_FOUND", method="/test.Children/A")
    first = children("NOT_FOUND", "/test.Children/A")
    assert children("NOT_FOUND", "/test.Children/A") is first
    assert first is metrics.RPCS.labels(code="NOT_FOUND", method="/test.Children/A")
    first.inc(2)
    children("NOT_FOUND", "/test.Children/A").inc()
    assert metrics.value("authd_rpcs_total", code="NOT_FOUND",
                         method="/test.Children/A") == before + 3
    assert len(children) == 1


def test_children_keep_at_most_their_size() -> None:
    children = metrics.Children(metrics.RPC_SECONDS, size=3)
    for i in range(50):
        children(f"/test.Children/Bound{i}").observe(0.001)
        assert len(children) == min(i + 1, 3)
    assert metrics.value("authd_rpc_seconds_count", method="/test.Children/Bound0") == 1
    assert metrics.value("authd_rpc_seconds_count", method="/test.Children/Bound49") == 1


def test_a_cache_of_no_children_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        metrics.Children(metrics.RPCS, size=0)
