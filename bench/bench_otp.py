"""Verify throughput and latency: authd over gRPC against the same work in process.

    python -m bench otp [--devices 100000] [--requests 30000] [--store sqlite|postgresql|both]

For each store: enroll N devices (TOTP, 60 s step, sealed seeds), then
1. in process: the OTP center's group-commit engine called directly (no gRPC);
2. over gRPC at full load: `authd serve` as a separate process, closed-loop clients;
3. over gRPC at half that rate, open loop, for the latency target (p99 < 10 ms);
4. over gRPC with VerifyStream (pipelined verifications on long-lived streams).
The daemon runs as a center-role node (`roles = ["center"]`), as backends reach it.
The mix is 70 % right codes and 30 % wrong codes; every commit is durable
(SQLite WAL synchronous=FULL, PostgreSQL fsync on). The load generator runs on the same two
cores: its CPU share is printed.
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
from pathlib import Path
from typing import Any

from bench.common import percentile, private_softhsm, table, tree_cpu_seconds

RIGHT_SHARE = 0.7
INSTITUTIONS = ("bank-a", "bank-b", "bank-c")


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
    """Bulk-enroll through the same sealing as the center; returns seconds taken."""
    from authd.secrets import open_secret_box
    from authd.storage import migrate, open_database

    started = time.perf_counter()
    db = open_database(cfg.store_url)
    migrate(db)
    box = open_secret_box(cfg, db)
    now = time.time()
    chunk = 5000
    for base in range(0, devices, chunk):
        rows, regs = [], []
        for i in range(base, min(devices, base + chunk)):
            serial = serial_of(i)
            rows.append((serial, "totp", 6, 60, "SHA1",
                         box.seal(seed_of(i), b"otp-seed:" + serial.encode()), -1, 0, "active",
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
    from authd.otp.feature import make_center, make_engine
    from authd.otp.settings import OtpSettings
    from authd.server import build_app

    app = build_app(cfg)
    settings = app.config.settings(OtpSettings)
    center = make_center(app, settings)
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
        engine.submit((serial, code, callers[bank]), serial).add_done_callback(
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
            "batch": items / max(1, batches)}


# ----------------------------------------------------------------------------- over gRPC


def _client(address: str, requests: list[tuple[str, str, str]], concurrency: int,
            rate: float | None, out: Any, stream: bool = False) -> None:
    """One load-generator process (grpc.aio): closed loop, or open loop at ``rate``/s; unary
    Verify calls, or one VerifyStream per institution with ``concurrency`` requests in flight."""
    import grpc

    from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT
    from authd.v1 import otp_pb2, otp_pb2_grpc

    async def go() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        async with grpc.aio.insecure_channel(address) as channel:
            stub = otp_pb2_grpc.OtpServiceStub(channel)
            mds = {b: ((METADATA_INSTITUTION, b), (METADATA_ROLE, "backend"),
                       (METADATA_SUBJECT, "bench")) for b in INSTITUTIONS}
            msgs = [(otp_pb2.VerifyRequest(serial=s, code=c), mds[b]) for s, c, b in requests]
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
                        await call.write(req)
                    await call.done_writing()

                writer = asyncio.ensure_future(write())
                async for answer in call:
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
                  stream: bool = False) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    slices = [requests[i::clients] for i in range(clients)]
    per_rate = rate / clients if rate else None
    procs = [ctx.Process(target=_client, args=(address, s, concurrency, per_rate, queue, stream))
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
    client_cpu = sum(r[2] for r in results)
    server_cpu = tree_cpu_seconds(server_pid) - server_cpu0
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 50) * 1e3,
            "p99": percentile(latencies, 99) * 1e3, "errors": sum(r[1] for r in results),
            "client_cpu": client_cpu / wall, "server_cpu": server_cpu / wall}


# ----------------------------------------------------------------------------- driver


def loop_engine_rows(store_url: str, pin_file: Path, root: Path, take: Any, count: int,
                     clients: int, concurrency: int) -> list[list[object]]:
    """The same node with ``[otp] engine = "loop"`` (evaluation on the event loop)."""
    from tests.nodes import Node

    node = Node(root / "node-loop", store_url,
                {"AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_LOG_LEVEL": "WARNING",
                 "AUTHD_ROLES": '["center"]', "AUTHD_OTP__ENGINE": '"loop"'})
    try:
        full = run_over_grpc(node.address, node.proc.pid, take(count), clients, concurrency)
        half_rate = full["rate"] / 2
        half = run_over_grpc(node.address, node.proc.pid, take(int(min(count, half_rate * 8))),
                             clients, concurrency, rate=half_rate)
    finally:
        node.terminate()
    return [
        ["sqlite", "gRPC full load, engine = loop", full["rate"], full["p50"], full["p99"],
         f"{full['client_cpu']:.2f}", f"{full['server_cpu']:.2f}",
         f"errors {full['errors']:.0f}"],
        ["sqlite", f"gRPC at half load ({half_rate:,.0f}/s), engine = loop", half["rate"],
         half["p50"], half["p99"], f"{half['client_cpu']:.2f}", f"{half['server_cpu']:.2f}",
         f"errors {half['errors']:.0f}"],
    ]


def bench_store(kind: str, devices: int, count: int, clients: int, concurrency: int,
                root: Path, processes: int = 1) -> list[list[object]]:
    from tests.nodes import Node
    from tests.pgcluster import start_pg_cluster

    root.mkdir(parents=True, exist_ok=True)
    pin_file = root.parent / "kek.pin"  # one KEK token for every store of this run
    if not pin_file.exists():
        pin_file.write_text(os.urandom(8).hex())
    cluster = None
    if kind == "sqlite":
        store_url = f"sqlite:///{root / 'bench.db'}"
    else:
        cluster = start_pg_cluster(root / "pg")
        store_url = cluster.url(cluster.create_database())
    rows: list[list[object]] = []
    try:
        cfg = config_for(root / "inproc", store_url, pin_file)
        took = enroll_devices(cfg, devices)
        print(f"[{kind}] enrolled {devices:,} devices in {took:.1f} s", flush=True)
        now = time.time()
        offset = 0

        def take(n: int) -> list[tuple[str, str, str]]:
            nonlocal offset
            batch = make_requests(offset, n, devices, now)
            offset += n
            return batch

        inproc = run_in_process(cfg, take(count))
        rows.append([kind, "in process (engine, no gRPC)", inproc["rate"], inproc["p50"],
                     inproc["p99"], "-", f"{inproc['cpu']:.2f}", f"batch {inproc['batch']:.0f}"])
        print(f"[{kind}] in process: {inproc['rate']:,.0f}/s", flush=True)

        # A center node, as the institutions' backends reach it (no branch devices attached).
        node = Node(root / f"node-{kind}", store_url,
                    {"AUTHD_KEK__PIN_FILE": str(pin_file), "AUTHD_LOG_LEVEL": "WARNING",
                     "AUTHD_ROLES": '["center"]', "AUTHD_SERVER__PROCESSES": str(processes)})
        try:
            warm = take(2000)
            run_over_grpc(node.address, node.proc.pid, warm, 1, 16)
            full = run_over_grpc(node.address, node.proc.pid, take(count), clients, concurrency)
            rows.append([kind, f"gRPC full load ({clients}x{concurrency} in flight, "
                               f"{processes} server process{'es' if processes > 1 else ''})",
                         full["rate"], full["p50"], full["p99"], f"{full['client_cpu']:.2f}",
                         f"{full['server_cpu']:.2f}", f"errors {full['errors']:.0f}"])
            print(f"[{kind}] gRPC full: {full['rate']:,.0f}/s", flush=True)
            half_rate = full["rate"] / 2
            half_n = int(min(count, half_rate * 8))
            half = run_over_grpc(node.address, node.proc.pid, take(half_n), clients,
                                 concurrency, rate=half_rate)
            rows.append([kind, f"gRPC at half load ({half_rate:,.0f}/s offered)", half["rate"],
                         half["p50"], half["p99"], f"{half['client_cpu']:.2f}",
                         f"{half['server_cpu']:.2f}", f"errors {half['errors']:.0f}"])
            streamed = run_over_grpc(node.address, node.proc.pid, take(count), clients,
                                     concurrency * 4, stream=True)
            rows.append([kind, f"gRPC VerifyStream ({clients}x3 streams)", streamed["rate"],
                         streamed["p50"], streamed["p99"], f"{streamed['client_cpu']:.2f}",
                         f"{streamed['server_cpu']:.2f}", f"errors {streamed['errors']:.0f}"])
            print(f"[{kind}] gRPC stream: {streamed['rate']:,.0f}/s", flush=True)
            rows.append([kind, "ratio unary gRPC / in process", full["rate"] / inproc["rate"],
                         "", "", "", "", ""])
            rows.append([kind, "ratio stream gRPC / in process",
                         streamed["rate"] / inproc["rate"], "", "", "", "", ""])
        finally:
            node.terminate()
        if kind == "sqlite":
            rows.extend(loop_engine_rows(store_url, pin_file, root, take, count, clients,
                                         concurrency))
    finally:
        if cluster is not None and cluster._stop:
            cluster._stop()
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench otp")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30_000)
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight per client")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes of the center node (SO_REUSEPORT)")
    args = parser.parse_args(argv)
    private_softhsm()
    root = Path(tempfile.mkdtemp(prefix="authd-bench-otp-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        os.chmod(root, 0o777)
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    rows: list[list[object]] = []
    try:
        for kind in stores:
            rows.extend(bench_store(kind, args.devices, args.requests, args.clients,
                                    args.concurrency, root / kind, args.processes))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"OTP Verify, {args.devices:,} enrolled devices, {RIGHT_SHARE:.0%} right codes, "
          f"durable commits, {os.cpu_count()} cores shared with the load generator")
    print(table(["store", "path", "verifies/s", "p50 ms", "p99 ms", "client CPU",
                 "server CPU", "note"], rows))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
