"""authd beside privacyIDEA 3.14 on the same machine, in the same window.

    python -m bench privacyidea [--script PATH] [--workdir DIR] [--seconds 20] [--devices N]
                                [--front python|native]

privacyIDEA's side is ``shared/peers/privacyidea_bench.sh`` (next to this repository): it
installs privacyIDEA in a virtualenv of its own, enrolls 1,000 HOTP and 1,000 TOTP tokens, runs
``gunicorn -w 2`` and ``wrk -t2 -c32`` posting wrong OTPs to ``/validate/check`` (SQLite), and
prints ``privacyidea_validate_rps N``. authd's side, right before and right after it: a center
node on SQLite with durable commits, h2load with 32 unary ``Verify`` calls in flight, wrong
codes spread over devices (as privacyIDEA's run sends), behind the front ``--front`` names
(the daemon's own Python server, or authd-front). The lockout threshold is raised for
both sides' runs (privacyIDEA's script sets its fail counter out of reach too), so every
request is evaluated and its failure written. Prints both figures, authd / privacyIDEA, and
the machine's load beside each.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from authd.files import create_private
from bench import h2load
from bench.bench_otp import (
    NO_LOCKOUT,
    NO_REFUSAL_LIMIT,
    VERIFY,
    config_for,
    enroll_devices,
    native_front_binary,
    native_jobs,
)
from bench.common import load1, private_softhsm, scrape, table, tree_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCRIPT = ROOT.parent / "shared" / "peers" / "privacyidea_bench.sh"
_RESULT = re.compile(r"^wrong_otp_c32 c=32 (.*)$", re.M)


def run_privacyidea(script: Path, workdir: Path, seconds: float) -> dict[str, Any]:
    env = {**os.environ, "FULL": "0", "DURATION": str(int(seconds))}
    started = time.perf_counter()
    done = subprocess.run(["bash", str(script), str(workdir)], env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"privacyIDEA benchmark failed ({done.returncode}):\n"
                         f"{done.stderr[-2000:]}\n{done.stdout[-2000:]}")
    match = _RESULT.search(done.stdout)
    if match is None:
        raise SystemExit(f"no result line from privacyIDEA's benchmark:\n{done.stdout[-2000:]}")
    fields = dict(part.split("=", 1) for part in match.group(1).split() if "=" in part)
    return {"rate": float(fields["rps"]), "p50": float(fields["p50_ms"]),
            "p99": float(fields["p99_ms"]), "max": float(fields["max_ms"]),
            "failed": int(fields["other"]) + int(fields["err_status"]) + int(fields["err_sock"]),
            "server": fields.get("cpu_server", "-"), "client": fields.get("cpu_wrk", "-"),
            "load": load1(), "took": time.perf_counter() - started}


def run_authd(address: str, pid: int, ok_calls: Any, jobs: list[h2load.Job],
              seconds: float) -> dict[str, Any]:
    url = f"http://{address}{VERIFY}"
    warm = h2load.run_counted(url, jobs, ok_calls, requests_each=100, streams=1)
    each = max(200, int(warm.rate * seconds / len(jobs)))
    cpu0, t0 = tree_cpu_seconds(pid), time.perf_counter()
    result = h2load.run_counted(url, jobs, ok_calls, requests_each=each, streams=1)
    wall = time.perf_counter() - t0
    return {"rate": result.rate, "p50": result.ms(50), "p99": result.ms(99),
            "max": result.max_ms, "failed": result.failed,
            "server": f"{(tree_cpu_seconds(pid) - cpu0) / wall * 100:.0f}%",
            "client": f"{result.client_cpu / wall * 100:.0f}%", "load": load1()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench privacyidea")
    parser.add_argument("--script", type=Path, default=DEFAULT_SCRIPT)
    parser.add_argument("--workdir", type=Path,
                        default=Path.home() / ".cache" / "authd-bench" / "privacyidea",
                        help="privacyIDEA's virtualenv and data (kept between runs)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--front", choices=("python", "native"), default="python")
    args = parser.parse_args(argv)
    if not args.script.is_file():
        raise SystemExit(f"privacyIDEA benchmark script not found: {args.script}")
    if not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")
    from tests.nodes import Node
    from tests.pgcluster import free_port

    private_softhsm()
    if args.front == "native":
        native_front_binary()
    root = Path(tempfile.mkdtemp(prefix="authd-bench-pi-"))
    pin_file = root / "kek.pin"
    create_private(pin_file, os.urandom(8).hex().encode())
    store_url = f"sqlite:///{root / 'bench.db'}"
    took = enroll_devices(config_for(root / "enroll", store_url, pin_file), args.devices)
    print(f"authd: enrolled {args.devices:,} devices in {took:.1f} s", flush=True)
    metrics_port = free_port()
    node = Node(root / "node", store_url,
                {"AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_ROLES": '["center"]',
                 "AUTHD_OTP__LOCKOUT_THRESHOLD": str(NO_LOCKOUT),
                 "AUTHD_SERVER__FRONT": args.front,
                 "AUTHD_SERVER__METRICS_LISTEN": f'"127.0.0.1:{metrics_port}"',
                 **NO_REFUSAL_LIMIT})

    def ok_calls() -> int:
        return int(scrape(metrics_port, "authd_rpcs_total", method=VERIFY, code="OK"))

    try:
        jobs = native_jobs(args.devices, time.time(), 32, 1)  # 32 calls in flight, as wrk -c32
        before = run_authd(node.address, node.proc.pid, ok_calls, jobs, args.seconds)
        print(f"authd before: {before['rate']:,.0f}/s", flush=True)
        args.workdir.parent.mkdir(parents=True, exist_ok=True)
        pi = run_privacyidea(args.script, args.workdir, args.seconds)
        print(f"privacyIDEA: {pi['rate']:,.1f}/s ({pi['took']:.0f} s with its setup)",
              flush=True)
        after = run_authd(node.address, node.proc.pid, ok_calls, jobs, args.seconds)
    finally:
        node.terminate()
        shutil.rmtree(root, ignore_errors=True)
    rows = []
    for name, r in ((f"authd Verify ({args.front} front, h2load, unary), before", before),
                    ("privacyIDEA /validate/check (wrk)", pi),
                    (f"authd Verify ({args.front} front, h2load, unary), after", after)):
        rows.append([name, r["rate"], r["p50"], r["p99"], r["max"], r["failed"], r["server"],
                     r["client"], f"{r['load']:.2f}"])
    authd_rate = (before["rate"] + after["rate"]) / 2
    rows.append(["authd / privacyIDEA (mean of authd's two runs)", authd_rate / pi["rate"],
                 "", "", "", "", "", "", ""])
    print()
    print(f"Wrong OTPs, 32 requests in flight, SQLite, durable commits, {os.cpu_count()} cores "
          "shared by server and load generator; server/client CPU in % of one core")
    print(table(["system", "calls/s", "p50 ms", "p99 ms", "max ms", "failed", "server CPU",
                 "client CPU", "load1"], rows))
