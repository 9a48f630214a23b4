"""Verify throughput and latency: authd over gRPC beside the transport floor and in process.

    python -m bench otp [--devices 100000] [--store sqlite|postgresql|both]
                        [--client h2load|python|both] [--front python|native|both]
                        [--repeat 3] [--seconds 5] [--processes 1] [--no-in-process]

For each store: enroll N TOTP devices (sealed seeds, direct store inserts), then measure
1. the transport floor of each front (``--front``): an empty grpc.aio unary handler with
   authd's server options and process model (``bench/empty_server.py``), and authd-front
   answering an empty call itself (the C++ gRPC stack), both loaded by h2load;
2. native client (h2load over h2c, ``bench/h2load.py``): ``authd serve --insecure`` as a
   center node behind each front, unary ``Verify`` at full load and at 3,000 calls a second
   offered (h2load's rate mode: the latency of the p99 target's load), ``VerifyBatch`` and
   ``VerifyStream`` (a batch or a streaming call carries many verifications), and the ratio
   Verify / the empty call of the same stack. h2load repeats one body per process, so
   this mode sends wrong codes to a spread of devices with the lockout threshold raised for the
   run: every verification is evaluated, counted and written (device, registration, audit
   row) - the costliest path; h2load's own success count is never used (see bench/h2load.py).
   Behind the native front, the empty linked call too (``[otp] link_empty_call``: an empty
   call sent over the engine link as a Verify is and answered by the daemon's link reader,
   never the engine), its runs taken in turn with unary Verify's at the same calls in flight,
   and the ratios Verify / empty linked (the engine's share) and empty linked / empty C++
   call (the link's);
3. Python client (grpc.aio, 2 processes): the 70 % right / 30 % wrong mix over all devices,
   unary at full load and at half that rate (latency), and streamed;
4. in process: the OTP center's engine called directly (no gRPC).
Every commit is durable (SQLite WAL synchronous=FULL, PostgreSQL fsync on). Each figure is run
``--repeat`` times: the median and the spread are printed, with the CPU of the server and of
the client (cores) and the machine's 1-minute load average at the end of the median run.
The load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authd.files import create_private
from authd.otp import stages
from authd.otp.link import EMPTY_LINKED
from bench import h2load
from bench.bench_grpc_apis import switches
from bench.common import (
    load1,
    median_and_spread,
    percentile,
    private_softhsm,
    proc_cpu_seconds,
    scrape,
    table,
    tree_cpu_seconds,
)

RIGHT_SHARE = 0.7
INSTITUTIONS = ("bank-a", "bank-b", "bank-c")


# The per-institution verification limit stays on (its cost is part of every call) but far
# above what this load generator offers, so that it never refuses a call.
NO_REFUSAL_LIMIT = {"AUTHD_OTP__VERIFY_PER_SECOND": "1000000",
                    "AUTHD_OTP__VERIFY_BURST": "1000000"}


def seed_of(i: int) -> bytes:
    return hashlib.sha1(b"bench-seed-%d" % i).digest()


def serial_of(i: int) -> str:
    return f"BENCH-{i:06d}"


def wrong_of(right: str) -> str:
    return f"{(int(right) + 500_000) % 1_000_000:06d}"


def make_requests(start: int, count: int, devices: int, now: float) -> list[tuple[str, str, str]]:
    """(serial, code, institution) with right codes on devices never used before in this run."""
    from devices.otp.codes import totp

    out = []
    for k in range(count):
        i = (start + k) % devices
        right = totp(seed_of(i), now, 60)
        code = right if (k * 7919) % 100 < RIGHT_SHARE * 100 else wrong_of(right)
        out.append((serial_of(i), code, INSTITUTIONS[k % 3]))
    return out


def config_for(data_dir: Path, store_url: str, pin_file: Path) -> Any:
    from authd import config as configmod

    return configmod.load(None, environ={}, overrides={
        "data_dir": str(data_dir), "store": {"url": store_url},
        "kek": {"pin_file": str(pin_file)},
        "server": {"insecure": True, "listen": "127.0.0.1:0"}})


def enroll_devices(cfg: Any, devices: int) -> float:
    """Bulk-enroll with the center's sealing (seed bound to its serial) and the store's own
    transactions, many rows per statement; returns seconds taken."""
    from authd.otp.service import seed_aad
    from authd.secrets import open_secret_box
    from authd.storage import migrate, open_database

    started = time.perf_counter()
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    now = time.time()
    chunk = 20_000
    for base in range(0, devices, chunk):
        if base and base % 200_000 == 0:
            print(f"  enrolled {base:,} devices", flush=True)
        rows, regs = [], []
        for i in range(base, min(devices, base + chunk)):
            serial = serial_of(i)
            rows.append((serial, "totp", 6, 60, "SHA1",
                         box.seal(seed_of(i), seed_aad(serial)), -1, 0, "active",
                         0, "bank-a", None, 0.0, now, now))
            regs.extend((serial, bank, "branch", now, 0) for bank in INSTITUTIONS)
        db.run(lambda tx, rows=rows, regs=regs: (
            tx.executemany(
                "INSERT INTO otp_devices (serial, kind, digits, period, algorithm, seed,"
                " last_counter, drift, state, failures, issuer, replaced_by, warranty_until,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows),
            tx.executemany(
                "INSERT INTO otp_registrations (serial, institution, channel, registered_at,"
                " failures_here) VALUES (?, ?, ?, ?, ?)", regs)))
    box.close()
    db.close()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- in process


def run_in_process(cfg: Any, requests: list[tuple[str, str, str]], window: int = 256
                   ) -> dict[str, float]:
    import threading

    from authd.context import Caller, Role
    from authd.otp.feature import make_engine, make_service
    from authd.otp.settings import OtpSettings
    from authd.server import build_app

    app = build_app(cfg)
    settings = app.config.settings(OtpSettings)
    center = make_service(app, settings)
    engine = make_engine(app, settings, center, in_loop=False)
    callers = {b: Caller(b, Role.BACKEND, "bench") for b in INSTITUTIONS}
    gate = threading.Semaphore(window)
    latencies: list[float] = []
    done = threading.Event()
    remaining = [len(requests)]
    lock = threading.Lock()
    cpu0 = time.process_time()
    started = time.perf_counter()

    def finished(t0: float, _: Future[Any]) -> None:
        latencies.append(time.perf_counter() - t0)
        gate.release()
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    for serial, code, bank in requests:
        gate.acquire()
        t0 = time.perf_counter()
        engine.submit((serial, code, callers[bank], None), serial).add_done_callback(
            lambda f, t0=t0: finished(t0, f))
    done.wait()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    batches, items = engine.batches, engine.items
    engine.close()
    app.executor.shutdown()
    app.db.close()
    app.secrets.close()
    return {"rate": len(requests) / elapsed, "p50": percentile(latencies, 50) * 1e3,
            "p99": percentile(latencies, 99) * 1e3, "cpu": cpu / elapsed,
            "batch": items / max(1, batches), "load": os.getloadavg()[0]}


# ----------------------------------------------------------------------------- over gRPC


def _client(address: str, requests: list[tuple[str, str, str]], concurrency: int,
            rate: float | None, out: Any, stream: bool = False, keys: bool = False) -> None:
    """One load-generator process (grpc.aio): closed loop, or open loop at ``rate``/s; unary
    Verify calls, or one VerifyStream per institution with ``concurrency`` requests in flight.
    ``keys``: each unary call names an idempotency key of its own (x-authd-idempotency-key)."""
    import grpc

    from authd.idempotency import METADATA_KEY
    from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT
    from authd.v1 import otp_pb2, otp_pb2_grpc

    async def go() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        async with grpc.aio.insecure_channel(address) as channel:
            stub = otp_pb2_grpc.OtpServiceStub(channel)
            mds = {b: ((METADATA_INSTITUTION, b), (METADATA_ROLE, "backend"),
                       (METADATA_SUBJECT, "bench")) for b in INSTITUTIONS}
            tag = os.urandom(4).hex()
            msgs = [(otp_pb2.VerifyRequest(serial=s, code=c),
                     (*mds[b], (METADATA_KEY, f"bench-{tag}-{i}")) if keys else mds[b])
                    for i, (s, c, b) in enumerate(requests)]
            next_index = iter(range(len(msgs)))
            start = time.perf_counter()

            async def worker() -> None:
                nonlocal errors
                for i in next_index:
                    if rate:
                        delay = start + i / rate - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    req, md = msgs[i]
                    t0 = time.perf_counter()
                    try:
                        await stub.Verify(req, metadata=md, timeout=30)
                    except grpc.RpcError:
                        errors += 1
                    latencies.append(time.perf_counter() - t0)

            async def streamer(bank: str, mine: list[int]) -> None:
                nonlocal errors
                window = asyncio.Semaphore(max(1, concurrency // len(INSTITUTIONS)))
                sent: dict[str, float] = {}
                call = stub.VerifyStream(metadata=mds[bank])

                async def write() -> None:
                    for i in mine:
                        await window.acquire()
                        req = otp_pb2.VerifyRequest(serial=requests[i][0], code=requests[i][1],
                                                    request_id=str(i))
                        sent[req.request_id] = time.perf_counter()
                        await call.write(otp_pb2.VerifyBatchRequest(requests=[req]))
                    await call.done_writing()

                writer = asyncio.ensure_future(write())
                async for frame in call:
                    for answer in frame.responses:
                        latencies.append(time.perf_counter() - sent.pop(answer.request_id))
                        if answer.HasField("error"):
                            errors += 1
                        window.release()
                await writer

            if stream:
                by_bank: dict[str, list[int]] = {b: [] for b in INSTITUTIONS}
                for i, (_, _, bank) in enumerate(requests):
                    by_bank[bank].append(i)
                await asyncio.gather(*(streamer(b, idx) for b, idx in by_bank.items()))
            else:
                await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors

    t_cpu = time.process_time()
    t0 = time.perf_counter()
    latencies, errors = asyncio.run(go())
    out.put((latencies, errors, time.process_time() - t_cpu, time.perf_counter() - t0))


def run_over_grpc(address: str, server_pid: int, requests: list[tuple[str, str, str]],
                  clients: int, concurrency: int, rate: float | None = None,
                  stream: bool = False, keys: bool = False) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    slices = [requests[i::clients] for i in range(clients)]
    per_rate = rate / clients if rate else None
    procs = [ctx.Process(target=_client,
                         args=(address, s, concurrency, per_rate, queue, stream, keys))
             for s in slices]
    server_cpu0 = tree_cpu_seconds(server_pid)
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r[3] for r in results)
    wall = time.perf_counter() - started
    latencies = [x for r in results for x in r[0]]
    errors = sum(r[1] for r in results)
    client_cpu = sum(r[2] for r in results)
    server_cpu = tree_cpu_seconds(server_pid) - server_cpu0
    return {"rate": (len(latencies) - errors) / elapsed,
            "p50": percentile(latencies, 50) * 1e3, "p99": percentile(latencies, 99) * 1e3,
            "max": max(latencies, default=float("nan")) * 1e3, "failed": errors,
            "client_cpu": client_cpu / wall, "server_cpu": server_cpu / wall, "load": load1()}




# ----------------------------------------------------------------------------- native client

VERIFY = "/authd.v1.OtpService/Verify"
VERIFY_STREAM = "/authd.v1.OtpService/VerifyStream"
VERIFY_BATCH = "/authd.v1.OtpService/VerifyBatch"
BATCH_SIZE = 32  # verifications carried by one VerifyBatch call
OFFERED = 3_000  # unary verifications a second offered in rate mode (the p99 target's load)
NO_LOCKOUT = 1_000_000  # the most [otp] lockout_threshold allows: h2load repeats its body, so
# wrong codes must not lock a device during a run (a device takes a few hundred a second)
STREAM_FRAMES = 32  # verifications carried by one VerifyStream call


@dataclass
class NativeLoad:
    """How the native client loads a server: h2load processes x streams in flight."""

    unary_processes: int = 16
    unary_streams: int = 4  # 16 x 4 = 64 unary calls in flight
    stream_processes: int = 8
    stream_calls: int = 2  # 8 x 2 x 32 = 512 verifications in flight
    seconds: float = 5.0


def h2_result(run: h2load.H2Run, server_pid: int, cpu0: float, wall: float,
              daemon0: float | None = None,
              switches0: tuple[int, int] | None = None) -> dict[str, float]:
    """``daemon0``: the server process's own CPU seconds (not its children's, not authd-front's)
    at the start: the result then says its CPU per operation answered (``daemon_us``);
    ``switches0``: its threads' voluntary and involuntary context switches at the start (then
    ``switches_vol``, ``switches_inv`` per operation answered)."""
    out = {"rate": run.rate, "p50": run.ms(50), "p99": run.ms(99), "max": run.max_ms,
           "failed": run.failed, "server_cpu": (tree_cpu_seconds(server_pid) - cpu0) / wall,
           "client_cpu": run.client_cpu / wall, "load": load1()}
    if daemon0 is not None and run.rate > 0:
        out["daemon_us"] = (proc_cpu_seconds(server_pid) - daemon0) / (run.rate * wall) * 1e6
    if switches0 is not None and run.rate > 0:
        voluntary, involuntary = switches(server_pid)
        out["switches_vol"] = (voluntary - switches0[0]) / (run.rate * wall)
        out["switches_inv"] = (involuntary - switches0[1]) / (run.rate * wall)
    return out


def timed_h2(server_pid: int, go: Any, per_process: int) -> dict[str, float]:
    cpu0, daemon0 = tree_cpu_seconds(server_pid), proc_cpu_seconds(server_pid)
    switches0 = switches(server_pid)
    t0 = time.perf_counter()
    result = go(per_process)
    return h2_result(result, server_pid, cpu0, time.perf_counter() - t0, daemon0, switches0)


def repeated(server_pid: int, go: Any, processes: int, per_request: int, seconds: float,
             repeat: int) -> list[dict[str, float]]:
    """Size the run from a short warm-up, then ``repeat`` runs of about ``seconds`` each."""
    warm = go(max(50, 400 // per_request))
    per_process = max(100, int(warm.rate * seconds / processes / per_request))
    return [timed_h2(server_pid, go, per_process) for _ in range(repeat)]


def interleaved(server_pid: int, gos: list[Any], processes: int, seconds: float,
                repeat: int) -> list[list[dict[str, float]]]:
    """As ``repeated`` for several loads of one server, their runs taken in turn (A, B, A,
    B...): each sized from a short warm-up of its own."""
    sizes = [max(100, int(go(400).rate * seconds / processes)) for go in gos]
    out: list[list[dict[str, float]]] = [[] for _ in gos]
    for _ in range(repeat):
        for runs, go, size in zip(out, gos, sizes, strict=True):
            runs.append(timed_h2(server_pid, go, size))
    return out


def cpu_us(run: dict[str, float]) -> float:
    """The server's CPU (daemon and front end) per call answered, in microseconds."""
    return run["server_cpu"] / run["rate"] * 1e6 if run["rate"] else float("nan")


def empty_floor(load: NativeLoad, processes: int, repeat: int) -> list[dict[str, float]]:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "bench.empty_server", "--processes",
                             str(processes)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split()[-1])
        url = f"http://127.0.0.1:{port}/bench.Empty/Call"
        jobs = [(h2load.frame(b""), ())] * load.unary_processes
        probe = h2load.run_empty(url.replace("/Call", "/Missing"), jobs[:1], requests_each=50)
        if probe.answered or probe.failed != probe.calls:  # UNIMPLEMENTED: HTTP 200, no body
            raise SystemExit(f"failure accounting broken: {probe}")

        def go(n: int) -> h2load.H2Run:
            return h2load.run_empty(url, jobs, requests_each=n, streams=load.unary_streams)

        return repeated(proc.pid, go, load.unary_processes, 1, load.seconds, repeat)
    finally:
        proc.terminate()
        proc.wait(30)


def native_front_binary() -> Path:
    """authd-front of this tree, built if it is missing or stale (native/front/build.sh)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    subprocess.run(["bash", str(root / "native" / "front" / "build.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    return root / "native" / "build" / "authd-front"


def empty_floor_native(load: NativeLoad, repeat: int, rps: int = 0
                       ) -> list[dict[str, float]]:
    """The native front end's own floor: authd-front answering an empty call itself
    (``--empty-method``), with no daemon behind it: the C++ gRPC stack and nothing else.
    ``rps``: offer that many calls a second per h2load process for ``load.seconds`` (the floor
    of the rate mode's tail: what the transport and the load generator alone give)."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="authd-front-floor-") as run_dir:
        proc = subprocess.Popen(
            [str(native_front_binary()), "--listen=127.0.0.1:0", "--insecure",
             f"--daemon=unix:{run_dir}/none.sock", "--empty-method=/bench.Empty/Call"],
            stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline().split()[-1])
            url = f"http://127.0.0.1:{port}/bench.Empty/Call"
            jobs = [(h2load.frame(b""), ())] * load.unary_processes

            def go(n: int) -> h2load.H2Run:
                return h2load.run_empty(url, jobs, requests_each=n, streams=load.unary_streams)

            def rated(_: int) -> h2load.H2Run:
                return h2load.run_empty(url, jobs, duration=load.seconds,
                                        streams=load.unary_streams, rps=rps)

            if rps:
                rated(0)  # warm up
                return [timed_h2(proc.pid, rated, 0) for _ in range(repeat)]
            return repeated(proc.pid, go, load.unary_processes, 1, load.seconds, repeat)
        finally:
            proc.terminate()
            proc.wait(30)


def _verify_frame(serial: str, code: str, request_id: str = "") -> bytes:
    from authd.v1 import otp_pb2

    return h2load.frame(otp_pb2.VerifyRequest(serial=serial, code=code,
                                              request_id=request_id).SerializeToString())


def native_jobs(devices: int, now: float, processes: int, frames: int,
                per_frame: int = 0, keys: bool = False) -> list[h2load.Job]:
    """Wrong codes for ``processes`` x ``frames`` devices spread over the whole range; one
    body per h2load process, each from one institution's backend. ``per_frame`` > 0: the
    body's frames are VerifyBatchRequests of that many verifications (VerifyBatch,
    VerifyStream), otherwise VerifyRequests (Verify)."""
    from authd.v1 import otp_pb2
    from devices.otp.codes import totp

    size = max(1, per_frame)
    n = processes * frames * size
    jobs: list[h2load.Job] = []
    for p in range(processes):
        body = b""
        for f in range(frames):
            requests = []
            for k in range(size):
                i = (((p * frames + f) * size + k) * devices) // n
                requests.append(otp_pb2.VerifyRequest(
                    serial=serial_of(i), code=wrong_of(totp(seed_of(i), now, 60)),
                    request_id=str(f * size + k) if frames * size > 1 else ""))
            if per_frame:
                body += h2load.frame(otp_pb2.VerifyBatchRequest(
                    requests=requests).SerializeToString())
            else:
                body += h2load.frame(requests[0].SerializeToString())
        bank = INSTITUTIONS[p % len(INSTITUTIONS)]
        headers = h2load.caller_headers(bank, "backend", "bench")
        if keys:  # h2load repeats its body: every call of a process is a retry of its key
            headers = (*headers, f"x-authd-idempotency-key: bench-{os.getpid()}-{p}")
        jobs.append((body, headers))
    return jobs


def stage_histograms(port: int, metric: str = "authd_otp_stage_seconds"
                     ) -> dict[str, dict[str, float]]:
    """``metric``, a histogram by stage of a node ([otp] stage_timings): per stage, the
    cumulative count of each bucket (by its upper bound, as text), ``_sum`` and ``_count``."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        m = re.match(metric + r'_(bucket|sum|count)\{(.*)\} (\S+)$', line)
        if m is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels["le"] if m.group(1) == "bucket" else "_" + m.group(1)
        found.setdefault(labels["stage"], {})[key] = float(m.group(3))
    return found


STAGE_ORDER = stages.STAGES  # the order a verification meets them


def _bucket_at(bounds: list[tuple[float, float]], rank: float) -> str:
    """The upper bound (ms) of the first bucket holding ``rank`` observations."""
    for bound, cumulative in bounds:
        if cumulative >= rank:
            return f"{bound * 1e3:.2f}" if bound != float("inf") else ">1000"
    return "-"


def stage_rows(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
               seconds: float) -> str:
    """What each stage took during a run: times a second, mean, p50, p99 and p99.9 (the
    upper bound of the bucket holding it), the largest bucket reached."""
    lines = [f"{'stage':<15} {'per s':>7} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
             f"{'p99.9 ms':>8} {'max ms':>7}"]
    for stage in [s for s in STAGE_ORDER if s in after] + \
            sorted(set(after) - set(STAGE_ORDER)):
        now, then = after[stage], before.get(stage, {})
        count = now["_count"] - then.get("_count", 0.0)
        if count <= 0:
            continue
        bounds = sorted((float(k), now[k] - then.get(k, 0.0)) for k in now
                        if not k.startswith("_"))

        mean = (now["_sum"] - then.get("_sum", 0.0)) / count
        at = [_bucket_at(bounds, q * count) for q in (0.5, 0.99, 0.999, 1.0)]
        lines.append(f"{stage:<15} {count / seconds:>7.0f} {mean * 1e3:>8.3f} {at[0]:>7} "
                     f"{at[1]:>7} {at[2]:>8} {at[3]:>7}")
    return "\n".join(lines)


SLOW_FRAMES = "authd_otp_slow_frame_seconds"


def slow_frame_rows(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]],
                    seconds: float) -> str:
    """The frames slower than ``stages.SLOW_FRAME`` during a run, and what each stage of their
    own path added to them on average (the stages add up to the frame's time)."""
    means: dict[str, float] = {}
    count = 0.0
    for stage in stages.FRAME_PATH:
        now, then = after.get(stage, {}), before.get(stage, {})
        count = now.get("_count", 0.0) - then.get("_count", 0.0)
        if count > 0:
            means[stage] = (now["_sum"] - then.get("_sum", 0.0)) / count
    if not means:
        return f"no frame reached {stages.SLOW_FRAME * 1e3:.0f} ms"
    total = sum(means.values())
    parts = ", ".join(f"{stage} {mean * 1e3:.2f} ({mean / total:.0%})"
                      for stage, mean in means.items())
    return (f"frames of {stages.SLOW_FRAME * 1e3:.0f} ms or more: {count / seconds:.0f}/s, "
            f"{total * 1e3:.2f} ms on average: {parts}")


def native_rows(kind: str, store_url: str, pin_file: Path, root: Path, devices: int,
                load: NativeLoad, processes: int, repeat: int,
                floor: list[dict[str, float]], front: str = "python", *,
                only_rated: bool = False, stages: bool = False,
                offered: int = OFFERED, keys: bool = False) -> list[list[object]]:
    from tests.nodes import Node
    from tests.pgcluster import free_port

    if front == "native":
        native_front_binary()
        processes = 1  # authd-front serves a node from one daemon process
    # The empty call over the engine link, answered by the daemon's link reader ([otp]
    # link_empty_call): the native front end's linked floor, run beside unary Verify.
    linked_empty = front == "native" and not only_rated
    empty_runs: list[dict[str, float]] = []
    metrics_port = free_port()
    node = Node(root / f"node-{kind}-h2load-{front}", store_url,
                {"AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_LOG_LEVEL": "WARNING",
                 "AUTHD_ROLES": '["center"]', "AUTHD_SERVER__PROCESSES": str(processes),
                 "AUTHD_SERVER__FRONT": front,
                 "AUTHD_OTP__LOCKOUT_THRESHOLD": str(NO_LOCKOUT),
                 "AUTHD_SERVER__METRICS_LISTEN": f'"127.0.0.1:{metrics_port}"',
                 **({"AUTHD_OTP__STAGE_TIMINGS": "true"} if stages else {}),
                 **({"AUTHD_OTP__LINK_EMPTY_CALL": "true"} if linked_empty else {}),
                 **NO_REFUSAL_LIMIT})
    ports = [metrics_port + i for i in range(processes)]

    def ok_calls() -> int:
        return int(sum(scrape(port, "authd_rpcs_total", method=VERIFY, code="OK")
                       for port in ports))

    def verifications() -> int:
        return int(sum(scrape(port, "authd_otp_verifications_total") for port in ports))

    def empties_answered() -> int:  # by the daemon's link reader
        return int(scrape(metrics_port, "authd_rpcs_total", method=EMPTY_LINKED, code="OK"))

    now = time.time()
    try:
        unary_jobs = native_jobs(devices, now, load.unary_processes, 1, keys=keys)
        stream_jobs = native_jobs(devices, now, load.stream_processes, STREAM_FRAMES, 1)
        batch_jobs = native_jobs(devices, now, load.stream_processes, 1, BATCH_SIZE)
        base = f"http://{node.address}"
        # the unary Verify's callers and in-flight calls, an empty request
        empty_jobs = [(h2load.frame(b""), headers) for _, headers in unary_jobs]

        def empty_linked(n: int) -> h2load.H2Run:
            return h2load.run_counted(base + EMPTY_LINKED, empty_jobs, empties_answered,
                                      requests_each=n, streams=load.unary_streams)

        def unary(n: int) -> h2load.H2Run:
            return h2load.run_counted(base + VERIFY, unary_jobs, ok_calls, requests_each=n,
                                      streams=load.unary_streams)

        def stream(n: int) -> h2load.H2Run:
            return h2load.run_counted(base + VERIFY_STREAM, stream_jobs, verifications,
                                      requests_each=n, streams=load.stream_calls,
                                      per_request=STREAM_FRAMES)

        def batch(n: int) -> h2load.H2Run:
            return h2load.run_counted(base + VERIFY_BATCH, batch_jobs, verifications,
                                      requests_each=n, streams=load.stream_calls * 2,
                                      per_request=BATCH_SIZE)

        check_failures_counted(base, ok_calls)
        each = -(-offered // load.unary_processes)  # per h2load process, rounded up

        def rated(_: int) -> h2load.H2Run:
            return h2load.run_counted(base + VERIFY, unary_jobs, ok_calls,
                                      duration=load.seconds, streams=load.unary_streams,
                                      rps=each)

        if only_rated:
            rated(0)  # warm up
        elif linked_empty:  # interleaved: Verify, empty linked, Verify, ...
            unary_runs, empty_runs = interleaved(node.proc.pid, [unary, empty_linked],
                                                 load.unary_processes, load.seconds, repeat)
            for what, runs in (("Verify unary", unary_runs), ("empty linked", empty_runs)):
                for run in runs:
                    print(f"[{kind}] {what}: {run['rate']:,.0f}/s, server CPU "
                          f"{cpu_us(run):.0f} us/call (daemon {run.get('daemon_us', 0):.0f}, "
                          f"front {cpu_us(run) - run.get('daemon_us', 0):.0f}), load1 "
                          f"{run['load']:.2f}", flush=True)
        else:
            unary_runs = repeated(node.proc.pid, unary, load.unary_processes, 1, load.seconds,
                                  repeat)
        rated_runs = []
        for _ in range(repeat):
            before = stage_histograms(metrics_port) if stages else {}
            slow_before = stage_histograms(metrics_port, SLOW_FRAMES) if stages else {}
            rated_runs.append(timed_h2(node.proc.pid, rated, 0))
            if stages:
                run = rated_runs[-1]
                print(f"[{kind}] {each * load.unary_processes:,}/s offered: {run['rate']:,.0f}/s"
                      f" answered, p50 {run['p50']:.1f} ms, p99 {run['p99']:.1f} ms, load1 "
                      f"{run['load']:.2f}; per stage:", flush=True)
                print(stage_rows(before, stage_histograms(metrics_port), load.seconds),
                      flush=True)
                print(slow_frame_rows(slow_before, stage_histograms(metrics_port, SLOW_FRAMES),
                                      load.seconds), flush=True)
        if only_rated:
            node.terminate()
            return [row(kind, f"{front} front: Verify unary, {each * load.unary_processes:,}"
                        "/s offered", "h2load", rated_runs)]
        stream_runs = repeated(node.proc.pid, stream, load.stream_processes, STREAM_FRAMES,
                               load.seconds, repeat)
        batch_runs = repeated(node.proc.pid, batch, load.stream_processes, BATCH_SIZE,
                              load.seconds, repeat)
    finally:
        node.terminate()
    procs = f"{processes} server process{'es' if processes > 1 else ''}"
    unary_in_flight = load.unary_processes * load.unary_streams
    stream_in_flight = load.stream_processes * load.stream_calls * STREAM_FRAMES
    batch_in_flight = load.stream_processes * load.stream_calls * 2 * BATCH_SIZE
    return [
        row(kind, f"{front} front: Verify unary ({unary_in_flight} in flight, {procs})",
            "h2load", unary_runs),
        row(kind, f"{front} front: Verify unary, {each * load.unary_processes:,}/s offered",
            "h2load", rated_runs),
        row(kind, f"{front} front: VerifyBatch ({BATCH_SIZE}/call, {batch_in_flight} in "
            "flight)", "h2load", batch_runs),
        row(kind, f"{front} front: VerifyStream ({STREAM_FRAMES}/call, {stream_in_flight} "
            "in flight)", "h2load", stream_runs),
        ratio_row(kind, f"{front} front: ratio Verify unary / its empty call", unary_runs,
                  floor),
        *([row(kind, f"{front} front: empty linked call ({unary_in_flight} in flight, "
               "answered by the link's reader)", "h2load", empty_runs),
           ratio_row(kind, f"{front} front: ratio Verify unary / empty linked", unary_runs,
                     empty_runs),
           ratio_row(kind, f"{front} front: ratio empty linked / empty C++", empty_runs,
                     floor)] if linked_empty else []),
    ]


def check_failures_counted(base: str, ok_calls: Any) -> None:
    """gRPC errors arrive as HTTP 200 with a grpc-status trailer: h2load calls them successes.
    Send calls that must fail (a code that is not digits: INVALID_ARGUMENT) and require that
    this benchmark counts every one of them as failed."""
    jobs = [(_verify_frame("BENCH-NONE", "00x000"),
             h2load.caller_headers("bank-a", "backend", "bench"))]
    probe = h2load.run_counted(base + VERIFY, jobs, ok_calls, requests_each=50, streams=4)
    if probe.answered or probe.failed != probe.calls:
        raise SystemExit(f"failure accounting broken: {probe}")
    print(f"check: {probe.calls} calls answered INVALID_ARGUMENT; h2load counted {probe.http_ok} "
          f"as succeeded, this benchmark {probe.failed} as failed", flush=True)


# ----------------------------------------------------------------------------- rows

HEADERS = ["store", "path", "client", "calls/s", "spread", "p50 ms", "p99 ms", "max ms",
           "failed", "server CPU", "client CPU", "daemon µs/op", "daemon cs/op", "load1"]


def row(kind: str, path: str, client: str, runs: list[dict[str, float]]) -> list[object]:
    """The median run of repeated runs, with the spread of their rates."""
    rate, spread = median_and_spread([r["rate"] for r in runs])
    mid = min(runs, key=lambda r: abs(r["rate"] - rate))
    failed = sum(r.get("failed", 0.0) for r in runs)
    return [kind, path, client, rate, spread, mid["p50"], mid["p99"], mid.get("max", "-"),
            f"{failed:.0f}", f"{mid['server_cpu']:.2f}",
            f"{mid['client_cpu']:.2f}" if "client_cpu" in mid else "-",
            f"{mid['daemon_us']:.0f}" if "daemon_us" in mid else "-",
            f"{mid['switches_vol']:.2f}+{mid['switches_inv']:.2f}" if "switches_vol" in mid
            else "-", f"{mid['load']:.2f}"]


def ratio_row(kind: str, what: str, runs: list[dict[str, float]],
              floor: list[dict[str, float]]) -> list[object]:
    rate, _ = median_and_spread([r["rate"] for r in runs])
    base, _ = median_and_spread([r["rate"] for r in floor])
    return [kind, what, "", rate / base if base else float("nan"), "", "", "", "", "", "", "",
            "", "", ""]


# ----------------------------------------------------------------------------- driver


def python_rows(kind: str, store_url: str, pin_file: Path, root: Path, take: Any, count: int,
                clients: int, concurrency: int, processes: int, repeat: int,
                front: str = "python", keys: bool = False, only_unary: bool = False
                ) -> list[list[object]]:
    """The Python load generator (grpc.aio), 70 % right codes, the normal lockout; ``keys``:
    every unary call with an idempotency key of its own."""
    from tests.nodes import Node

    if front == "native":
        native_front_binary()
    node = Node(root / f"node-{kind}-{front}", store_url,
                {"AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_LOG_LEVEL": "WARNING",
                 "AUTHD_ROLES": '["center"]', "AUTHD_SERVER__PROCESSES": str(processes),
                 "AUTHD_SERVER__FRONT": front, **NO_REFUSAL_LIMIT})
    keyed = ", a key each" if keys else ""
    in_flight = clients * concurrency
    try:
        run_over_grpc(node.address, node.proc.pid, take(2000), 1, 16, keys=keys)  # warm up
        full = [run_over_grpc(node.address, node.proc.pid, take(count), clients, concurrency,
                              keys=keys) for _ in range(repeat)]
        if only_unary:
            return [row(kind, f"{front} front: Verify unary, 70 % right ({in_flight} in "
                        f"flight{keyed})", "python", full)]
        half_rate = median_and_spread([r["rate"] for r in full])[0] / 2
        half = [run_over_grpc(node.address, node.proc.pid,
                              take(int(min(count, half_rate * 6))), clients, concurrency,
                              rate=half_rate) for _ in range(repeat)]
        streamed = [run_over_grpc(node.address, node.proc.pid, take(count), clients,
                                  concurrency * 4, stream=True) for _ in range(repeat)]
    finally:
        node.terminate()
    return [
        row(kind, f"Verify unary, 70 % right ({in_flight} in flight)", "python", full),
        row(kind, f"Verify unary at half load ({half_rate:,.0f}/s offered)", "python", half),
        row(kind, f"VerifyStream ({clients}x3 streams)", "python", streamed),
    ]


def bench_store(kind: str, args: Any, root: Path,
                floors: dict[str, list[dict[str, float]]]) -> list[list[object]]:
    from tests.pgcluster import start_pg_cluster

    root.mkdir(parents=True, exist_ok=True)
    pin_file = root.parent / "kek.pin"  # one KEK token for every store of this run
    if not pin_file.exists():
        create_private(pin_file, os.urandom(8).hex().encode())
    cluster = None
    if kind == "sqlite":
        store_url = f"sqlite:///{root / 'bench.db'}"
    else:
        cluster = start_pg_cluster(root / "pg")
        store_url = cluster.url(cluster.create_database())
    rows: list[list[object]] = []
    try:
        cfg = config_for(root / "inproc", store_url, pin_file)
        took = enroll_devices(cfg, args.devices)
        print(f"[{kind}] enrolled {args.devices:,} devices in {took:.1f} s", flush=True)
        now = time.time()
        offset = 0

        def take(n: int) -> list[tuple[str, str, str]]:
            nonlocal offset
            batch = make_requests(offset, n, args.devices, now)
            offset += n
            return batch

        for front, floor in floors.items():
            rows.extend(native_rows(kind, store_url, pin_file, root, args.devices,
                                    args.native, args.processes, args.repeat, floor, front,
                                    only_rated=args.only == "rated", stages=args.stages,
                                    offered=args.offered, keys=args.keys))
            print(f"[{kind}] native client, {front} front done", flush=True)
        if args.client in ("python", "both"):
            python_front = "native" if args.front == "native" else "python"
            rows.extend(python_rows(kind, store_url, pin_file, root, take, args.requests,
                                    args.clients, args.concurrency, args.processes,
                                    args.repeat, python_front, args.keys,
                                    only_unary=args.only == "unary"))
            print(f"[{kind}] Python client done", flush=True)
        if args.in_process:
            inproc = run_in_process(cfg, take(args.requests))
            rows.append([kind, f"in process (engine, no gRPC, batch {inproc['batch']:.0f})",
                         "-", inproc["rate"], "-", inproc["p50"], inproc["p99"], "-", "0",
                         f"{inproc['cpu']:.2f}", "-", f"{load1():.2f}"])
    finally:
        if cluster is not None and cluster._stop:
            cluster._stop()
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench otp")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--client", choices=["h2load", "python", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (spread)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per native-client run")
    parser.add_argument("--requests", type=int, default=10_000, help="per Python-client run")
    parser.add_argument("--clients", type=int, default=2, help="Python load processes")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="Python client: calls in flight per process")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes of the center node (SO_REUSEPORT)")
    parser.add_argument("--front", choices=["python", "native", "both"], default="both",
                        help="native client: who serves the port ([server] front)")
    parser.add_argument("--no-in-process", dest="in_process", action="store_false")
    parser.add_argument("--only", choices=["all", "rated", "unary"], default="all",
                        help="rated: the native client's rate mode only (the p99 target); "
                             "unary: the Python client's 64-in-flight unary figure only")
    parser.add_argument("--keys", action="store_true",
                        help="unary calls name an idempotency key: the Python client one per "
                             "call, h2load one per process (its calls are retries of it)")
    parser.add_argument("--offered", type=int, default=OFFERED,
                        help="unary verifications a second offered in rate mode")
    parser.add_argument("--stages", action="store_true",
                        help="time each stage of the engine ([otp] stage_timings) in rate mode")
    args = parser.parse_args(argv)
    args.native = NativeLoad(seconds=args.seconds)
    native = args.client in ("h2load", "both")
    if native and not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")
    private_softhsm()
    root = Path(tempfile.mkdtemp(prefix="authd-bench-otp-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o777)
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows: list[list[object]] = []
    try:
        floors: dict[str, list[dict[str, float]]] = {}
        fronts = ["python", "native"] if args.front == "both" else [args.front]
        if native and args.only == "rated":
            floors = {front: [] for front in fronts}  # no floor: no ratio in this mode
            if "native" in fronts:  # the tail of the transport and h2load alone, same rate
                each = -(-args.offered // args.native.unary_processes)
                runs = empty_floor_native(args.native, args.repeat, each)
                rows.append(row("-", f"native front: empty C++ call, "
                                f"{each * args.native.unary_processes:,}/s offered (floor)",
                                "h2load", runs))
                for run in runs:
                    print(f"native empty call, {each * args.native.unary_processes:,}/s "
                          f"offered: {run['rate']:,.0f}/s answered, p50 {run['p50']:.1f} ms, "
                          f"p99 {run['p99']:.1f} ms, load1 {run['load']:.2f}", flush=True)
        elif native and "python" in fronts:
            floors["python"] = empty_floor(args.native, args.processes, args.repeat)
            rows.append(row("-", "python front: empty grpc.aio unary call (floor)", "h2load",
                            floors["python"]))
            print(f"python empty call floor: {rows[-1][3]:,.0f}/s", flush=True)
        if native and "native" in fronts and args.only != "rated":
            floors["native"] = empty_floor_native(args.native, args.repeat)
            rows.append(row("-", "native front: empty C++ gRPC unary call (floor)", "h2load",
                            floors["native"]))
            print(f"native empty call floor: {rows[-1][3]:,.0f}/s", flush=True)
        for kind in stores:
            rows.extend(bench_store(kind, args, root / kind, floors))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"OTP Verify, {args.devices:,} enrolled devices, durable commits, "
          f"{os.cpu_count()} cores shared by server and load generator; median of "
          f"{args.repeat} runs (spread: min-max); CPU in cores; load1 = 1-minute load average")
    print(table(HEADERS, rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
