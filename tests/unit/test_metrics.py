"""authd's metrics as a scrape sees them (prometheus_client's exposition format)."""

from __future__ import annotations

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
