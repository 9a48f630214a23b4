"""Prometheus metrics (prometheus_client), served over HTTP when configured.

Labels carry method names, status codes, outcomes and institution codes — never serials,
codes, PINs or anything a customer typed. The daemon's metrics live in their own registry
(not the library's global one), so tests and benchmarks read exactly what authd counts.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import start_http_server as _start_http_server

try:  # a series per counter with its creation time adds nothing a scraper needs
    from prometheus_client import disable_created_metrics

    disable_created_metrics()
except ImportError:  # older prometheus_client
    pass

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REGISTRY = CollectorRegistry(auto_describe=True)

RPCS = Counter("authd_rpcs", "gRPC calls handled, by method and status code",
               ("code", "method"), registry=REGISTRY)
RPC_SECONDS = Histogram("authd_rpc_seconds", "gRPC call latency in seconds, by method",
                        ("method",), buckets=LATENCY_BUCKETS, registry=REGISTRY)
# A lent stream's requests answered by the native front end (the stream itself is a call the
# daemon never sees when all of its requests were lent: authd/lent_calls.py).
LENT_STREAM_REQUESTS = Counter(
    "authd_lent_stream_requests",
    "stream requests answered by the native front end on a lent token login, by method",
    ("method",), registry=REGISTRY)
LENT_STREAM_REQUEST_SECONDS = Histogram(
    "authd_lent_stream_request_seconds",
    "how long the native front end took to answer a lent stream request, by method",
    ("method",), buckets=LATENCY_BUCKETS, registry=REGISTRY)
OTP_VERIFICATIONS = Counter("authd_otp_verifications",
                            "OTP verifications by outcome and institution",
                            ("institution", "outcome"), registry=REGISTRY)
OTP_VERIFICATION_REPLAYS = Counter(
    "authd_otp_verification_replays",
    "OTP verifications sent again with their idempotency key and answered with the first "
    "answer (not counted again in authd_otp_verifications_total), by institution",
    ("institution",), registry=REGISTRY)
RATE_LIMITED = Counter("authd_rate_limited",
                       "calls refused by a per-institution rate limit, by limit and institution",
                       ("institution", "limit"), registry=REGISTRY)
OTP_BATCH = Histogram("authd_otp_commit_batch_size",
                      "verifications committed per durable transaction",
                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=REGISTRY)
OTP_BATCH_SPLITS = Counter(
    "authd_otp_batches_split",
    "verification batches whose transaction failed and whose jobs were committed one by one",
    registry=REGISTRY)
OTP_WRITER_FAILURES = Counter(
    "authd_otp_writer_failures",
    "OTP verification writers that failed unexpectedly and were restarted, by engine",
    ("engine",), registry=REGISTRY)
POLICY_DECISIONS = Counter("authd_policy_decisions",
                           "transfer decisions by outcome and institution",
                           ("institution", "outcome"), registry=REGISTRY)


class Children:
    """The labelled children of one metric, each looked up by its label values once.

    ``metric.labels(...)`` costs more than the count it leads to, so the hot paths keep the
    children they count with. ``children("a", "b")`` is ``metric.labels("a", "b")`` (the values
    in the order of the metric's label names); at most ``size`` children are kept (the oldest
    is let go first), so label values a caller chooses cannot grow the cache without limit.
    """

    def __init__(self, metric: Any, size: int = 4096) -> None:
        if size < 1:
            raise ValueError("a cache of metric children holds at least one")
        self._metric = metric
        self._size = size
        self._kept: dict[tuple[str, ...], Any] = {}
        self._adding = threading.Lock()  # taken only on a miss: callers count on many threads

    def __call__(self, *values: str) -> Any:
        child = self._kept.get(values)
        if child is None:
            child = self._metric.labels(*values)
            with self._adding:
                if values not in self._kept:
                    if len(self._kept) >= self._size:
                        del self._kept[next(iter(self._kept))]
                    self._kept[values] = child
        return child

    def __len__(self) -> int:
        return len(self._kept)


def value(name: str, **labels: str) -> float:
    """The current value of a sample (``authd_rpcs_total``, labels...); 0 when never counted."""
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else float(found)


def render() -> str:
    """The exposition text a scrape gets."""
    return generate_latest(REGISTRY).decode()


class MetricsServer:
    """``GET /metrics`` (any path, as prometheus_client serves it) on its own thread."""

    def __init__(self, listen: str) -> None:
        host, port = listen.rsplit(":", 1)
        self._httpd, self._thread = _start_http_server(int(port), addr=host.strip("[]"),
                                                       registry=REGISTRY)
        self.port = int(self._httpd.server_address[1])

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
