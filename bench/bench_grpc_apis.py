"""gRPC's C++ server APIs weighed on an empty unary call (``native/bench/empty_apis.cc``).

    python -m bench grpc_apis [--rounds 3] [--calls 5000] [--streams 1,16]
                              [--modes callback,raw,raw-alone,generic] [--poll epoll1|poll]

The same empty method served four ways by Debian's gRPC: ``callback`` (a callback generic
reactor, as authd-front serves the calls it forwards), ``raw`` (a raw async unary method on a
completion queue drained by one thread that answers inline, beside a callback generic service:
authd-front's linked unary methods, ``native/front/unary.h``), ``raw-alone`` (the same with no
callback service in the server) and ``generic`` (AsyncGenericService; gRPC takes only one
generic service a server, so authd-front could not keep its callback one beside it). Each is
loaded by h2load (one connection, ``--streams`` calls in flight), the modes interleaved round by
round; printed per call: the server's CPU (/proc/<pid>/stat), its voluntary and involuntary
context switches (all its threads), latency p50 and the rate, with the load average.
``--poll``: gRPC core's polling engine for the server (GRPC_POLL_STRATEGY; epoll1 is its
default on Linux). The tool is compiled on first use into native/build/empty-apis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
from pathlib import Path

from bench import h2load
from bench.common import proc_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "native" / "bench" / "empty_apis.cc"
TOOL = ROOT / "native" / "build" / "empty-apis"
URL = "http://127.0.0.1:{port}/bench.Empty/Call"


def build() -> Path:
    if TOOL.exists() and TOOL.stat().st_mtime >= SOURCE.stat().st_mtime:
        return TOOL
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "grpc++", "protobuf",
                            "absl_synchronization"], check=True, capture_output=True,
                           text=True).stdout.split()
    TOOL.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["g++", "-std=c++17", "-O2", "-g0", "-pthread", str(SOURCE), "-o", str(TOOL),
                    *flags], check=True)
    return TOOL


def switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of all a process's threads so far."""
    voluntary = involuntary = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def one(tool: Path, mode: str, streams: int, calls: int, poll: str) -> dict[str, float]:
    server = subprocess.Popen([str(tool), f"--mode={mode}", "--port=0"], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "GRPC_POLL_STRATEGY": poll})
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[-1])
        jobs = [(h2load.frame(b""), ())]
        h2load.run_empty(URL.format(port=port), jobs, requests_each=500, streams=streams)
        cpu0, (vol0, inv0) = proc_cpu_seconds(server.pid), switches(server.pid)
        run = h2load.run_empty(URL.format(port=port), jobs, requests_each=calls,
                               streams=streams)
        cpu1, (vol1, inv1) = proc_cpu_seconds(server.pid), switches(server.pid)
    finally:
        server.terminate()
        server.wait()
    n = max(1, run.answered)
    return {"cpu": (cpu1 - cpu0) / n * 1e6, "vol": (vol1 - vol0) / n,
            "inv": (inv1 - inv0) / n, "p50": run.ms(50) * 1e3, "rate": run.rate}


def spread(values: list[float], digits: int = 0) -> str:
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench grpc_apis")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--streams", default="1,16")
    parser.add_argument("--modes", default="callback,raw,raw-alone,generic")
    parser.add_argument("--poll", default="epoll1")
    args = parser.parse_args(argv)
    if not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")
    tool = build()
    modes = args.modes.split(",")
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    for streams in (int(s) for s in args.streams.split(",")):
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                runs[mode].append(one(tool, mode, streams, args.calls, args.poll))
        print(f"{streams} in flight, {args.calls} calls a run, {args.rounds} rounds interleaved, "
              f"{os.cpu_count()} cores, polling {args.poll}; per call, median (min-max):")
        print(f"{'mode':<10} {'CPU µs':>16} {'voluntary':>18} {'involuntary':>18} "
              f"{'p50 µs':>16} {'calls/s':>20}")
        for mode in modes:
            r = runs[mode]
            print(f"{mode:<10} {spread([x['cpu'] for x in r]):>16} "
                  f"{spread([x['vol'] for x in r], 2):>18} {spread([x['inv'] for x in r], 2):>18} "
                  f"{spread([x['p50'] for x in r]):>16} {spread([x['rate'] for x in r]):>20}")
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average (1, 5, 15 min) before {' '.join(load_before)}, "
          f"after {' '.join(load_after)}")
