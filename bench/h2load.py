"""A native gRPC load generator: nghttp2's ``h2load`` posting gRPC-framed requests over h2c.

h2load speaks HTTP/2, not gRPC: it posts the same body again and again and counts every
HTTP 200 as a success, also one whose trailer says ``grpc-status: 13`` or one with no body at
all (grpc answers a call it cancels under overload that way). So a run here never takes h2load's
count of successes: :func:`run` returns the answered calls as the caller counts them (the
server's own count of OK calls, or the bodies received), and every other request is a failure.

Each body is a file of one or more gRPC frames (a 5-byte prefix - compressed flag, big-endian
length - and the serialized message); one h2load process runs per body, so a run can spread
its load over several devices although h2load repeats one body per process.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import percentile

GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


def frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def caller_headers(institution: str, role: str, subject: str) -> tuple[str, ...]:
    """The insecure development mode's caller metadata as HTTP/2 headers."""
    from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT

    return (f"{METADATA_INSTITUTION}: {institution}", f"{METADATA_ROLE}: {role}",
            f"{METADATA_SUBJECT}: {subject}")


def available() -> bool:
    return shutil.which("h2load") is not None


@dataclass
class H2Run:
    """One h2load run (all its processes), with the figures a benchmark prints."""

    requests: int  # HTTP/2 requests sent
    http_ok: int  # what h2load calls succeeded (HTTP 2xx): NOT the gRPC outcome
    data_bytes: int  # DATA frame bytes received (gRPC answer bodies)
    elapsed: float  # seconds from the first request to the last answer
    latencies: list[float] = field(repr=False)  # seconds, per answered request
    client_cpu: float = 0.0  # CPU seconds of the h2load processes
    per_request: int = 1  # calls (messages) carried by one request: a stream carries many
    answered: int = 0  # calls answered OK, as the caller counted them

    @property
    def calls(self) -> int:
        return self.requests * self.per_request

    @property
    def failed(self) -> int:
        return self.calls - self.answered

    @property
    def rate(self) -> float:
        return self.answered / self.elapsed if self.elapsed > 0 else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.latencies, p) * 1e3

    @property
    def max_ms(self) -> float:
        return max(self.latencies, default=float("nan")) * 1e3


_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded")
_TRAFFIC = re.compile(r"traffic: .*?\((\d+)\) data")


Job = tuple[bytes, Sequence[str]]  # a body and the extra headers sent with it


def run(url: str, jobs: Sequence[Job], *, requests_each: int = 0, duration: float = 0.0,
        connections: int = 1, streams: int = 8, per_request: int = 1, rps: int = 0,
        timeout: float = 600.0) -> H2Run:
    """Run one h2load per job at once (``connections`` x ``streams`` in flight each), each
    sending ``requests_each`` requests or sending for ``duration`` seconds; wait for all of
    them. A body of ``per_request`` frames is one streaming call carrying that many messages.
    ``rps`` > 0 offers that many requests a second on each connection (h2load's rate mode:
    the latency of a given load rather than of as much as the server takes)."""
    work = Path(tempfile.mkdtemp(prefix="authd-h2load-"))
    procs: list[tuple[subprocess.Popen[str], Path]] = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        for i, (body, headers) in enumerate(jobs):
            data = work / f"body-{i}.bin"
            data.write_bytes(body)
            log = work / f"log-{i}.tsv"
            amount = (["-D", str(max(1, round(duration)))] if duration
                      else ["-n", str(max(requests_each, connections))])
            cmd = ["h2load", *amount, "-c", str(connections), "-m", str(streams), "-t", "1",
                   "-d", str(data), "--log-file", str(log)]
            if rps:
                cmd += ["--rps", str(rps)]
            for h in (*GRPC_HEADERS, *headers):
                cmd += ["-H", h]
            procs.append((subprocess.Popen([*cmd, url], stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True), log))
        outputs = [p.communicate(timeout=timeout)[0] for p, _ in procs]
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = http_ok = data_bytes = 0
    for out in outputs:
        m = _REQUESTS.search(out)
        t = _TRAFFIC.search(out)
        if m is None or t is None:
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError(f"h2load failed: {out[-500:]}")
        total += int(m.group(1))
        http_ok += int(m.group(2))
        data_bytes += int(t.group(1))
    first, last = float("inf"), 0.0
    latencies: list[float] = []
    for _, log in procs:
        for line in log.read_text().splitlines():
            cols = line.split("\t")
            if len(cols) < 3:
                continue
            start_us, status, took_us = int(cols[0]), int(cols[1]), int(cols[2])
            first = min(first, start_us / 1e6)
            last = max(last, (start_us + took_us) / 1e6)
            if status == 200:
                latencies.append(took_us / 1e6)
    shutil.rmtree(work, ignore_errors=True)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return H2Run(total, http_ok, data_bytes, max(0.0, last - first), latencies, cpu,
                 per_request)


def run_empty(url: str, jobs: Sequence[Job], **kwargs: Any) -> H2Run:
    """:func:`run` against ``bench.empty_server``: every OK answer is one empty message, a
    5-byte frame, so the answered calls are the body bytes received over 5; error answers
    (trailers only) and bodiless HTTP 200s carry none."""
    result = run(url, jobs, **kwargs)
    result.answered = min(result.calls, result.data_bytes // 5)
    return result


def run_counted(url: str, jobs: Sequence[Job], count_ok: Callable[[], int],
                **kwargs: Any) -> H2Run:
    """:func:`run`, with ``answered`` taken from ``count_ok`` (read before and after)."""
    before = count_ok()
    result = run(url, jobs, **kwargs)
    result.answered = min(result.calls, count_ok() - before)
    return result

