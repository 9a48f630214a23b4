"""Prometheus metrics in the text exposition format, served over HTTP when configured.

Labels carry method names, status codes, outcomes and institution codes — never serials,
codes, PINs or anything a customer typed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + body + "}"


def _num(value: float) -> str:
    """A sample value, exact: counts past a million must not round (``:g`` keeps 6 digits)."""
    return str(int(value)) if value.is_integer() else repr(value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for labels, value in sorted(self._values.items()):
                lines.append(f"{self.name}{_fmt_labels(labels)} {_num(value)}")
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str,
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self._series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0.0] * (len(self.buckets) + 2)
            if index < len(self.buckets):
                series[index] += 1
            series[-2] += value
            series[-1] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for labels, series in sorted(self._series.items()):
                running = 0.0
                for bound, count in zip(self.buckets, series, strict=False):
                    running += count
                    lines.append(f"{self.name}_bucket{_fmt_labels(labels, (('le', f'{bound:g}'),))}"
                                 f" {_num(running)}")
                lines.append(f"{self.name}_bucket{_fmt_labels(labels, (('le', '+Inf'),))}"
                             f" {_num(series[-1])}")
                lines.append(f"{self.name}_sum{_fmt_labels(labels)} {series[-2]!r}")
                lines.append(f"{self.name}_count{_fmt_labels(labels)} {_num(series[-1])}")
        return lines


class Gauge:
    """A value that goes up and down (e.g. certificates expiring soon), set as a whole."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = {}
        self._lock = threading.Lock()

    def replace(self, values: dict[Labels, float]) -> None:
        """Every series at once: series not named are dropped."""
        with self._lock:
            self._values = dict(values)

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        with self._lock:
            for labels, value in sorted(self._values.items()):
                lines.append(f"{self.name}{_fmt_labels(labels)} {_num(float(value))}")
        return lines


class Registry:
    def __init__(self) -> None:
        self._metrics: list[Counter | Histogram | Gauge] = []

    def gauge(self, name: str, help_text: str) -> Gauge:
        metric = Gauge(name, help_text)
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str) -> Counter:
        metric = Counter(name, help_text)
        self._metrics.append(metric)
        return metric

    def histogram(self, name: str, help_text: str,
                  buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
        metric = Histogram(name, help_text, buckets)
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
RPCS = REGISTRY.counter("authd_rpcs_total", "gRPC calls handled, by method and status code")
RPC_SECONDS = REGISTRY.histogram("authd_rpc_seconds", "gRPC call latency in seconds, by method")
OTP_VERIFICATIONS = REGISTRY.counter("authd_otp_verifications_total",
                                     "OTP verifications by outcome and institution")
RATE_LIMITED = REGISTRY.counter("authd_rate_limited_total",
                               "calls refused by a per-institution rate limit, by limit and "
                               "institution")
OTP_BATCH = REGISTRY.histogram("authd_otp_commit_batch_size",
                               "verifications committed per durable transaction",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
OTP_BATCH_SPLITS = REGISTRY.counter(
    "authd_otp_batches_split_total",
    "verification batches whose transaction failed and whose jobs were committed one by one")
OTP_WRITER_FAILURES = REGISTRY.counter(
    "authd_otp_writer_failures_total",
    "OTP verification writers that failed unexpectedly and were restarted, by engine")


class MetricsServer:
    """``GET /metrics`` on its own thread."""

    def __init__(self, listen: str, registry: Registry = REGISTRY) -> None:
        host, port = listen.rsplit(":", 1)
        reg = registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = reg.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Scrapes are not logged (the access log is for gRPC calls)."""

        self._httpd = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="authd-metrics",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
