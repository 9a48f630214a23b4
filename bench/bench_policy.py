"""Transfer decisions per second with the OTP verification they contain, against Verify alone.

    python -m bench policy [--customers 2000] [--store sqlite|postgresql|both] [--repeat 3]
                           [--clients 2] [--concurrency 64]

For each store: bulk-enroll 2 x repeat x customers TOTP devices (sealed seeds) and as many
customers with their agreement, each device registered for its customer, then start
``authd serve --insecure`` as a center node and load it from ``--clients`` grpc.aio processes
(closed loop, ``--concurrency`` calls in flight each) with
1. ``OtpService.Verify``: one right code per device (its first use: evaluated, counted, audited);
2. ``PolicyService.AuthorizeTransfer``: one order per customer with the right code of its OTP
   from a terminal that is not designated (the OTP is exempt, EFT art. 14(1)6): the customer's
   row locked, the code verified through the OTP center, the limit consumed, the decision
   recorded and audited - all in one transaction of the decisions' group commit.
Each run uses devices never used before. The median of ``--repeat`` runs is printed with the
spread, the server's CPU (cores) and the machine's 1-minute load average after the run, and the
ratio decision / Verify: the decision must not cost more than the verification it contains
(ratio >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from authd.files import create_private
from bench.bench_otp import config_for, enroll_devices, seed_of, serial_of
from bench.common import load1, median_and_spread, percentile, table, tree_cpu_seconds

VERIFY = "/authd.v1.OtpService/Verify"
AUTHORIZE = "/authd.v1.PolicyService/AuthorizeTransfer"
NO_REFUSAL_LIMIT = {"AUTHD_OTP__VERIFY_PER_SECOND": "1000000",
                    "AUTHD_OTP__VERIFY_BURST": "1000000"}


def customer_of(i: int) -> str:
    return f"BENCH-CUST-{i:06d}"


def setup_customers(cfg: Any, first: int, count: int) -> None:
    """Agreements for customers ``first..first+count``; device i's registration at bank-a
    names customer i (the customer model the policy reads a customer's media from)."""
    from authd.storage import open_database

    db = open_database(cfg.store_url)
    now = time.time()
    rows = [("bank-a", customer_of(i), "personal", now, now, 0.0, 0.0, 0, 0, 0, 0, 0, "", "",
             0, 0, now) for i in range(first, first + count)]
    owners = [(customer_of(i), serial_of(i)) for i in range(first, first + count)]
    db.run(lambda tx: (
        tx.executemany(
            "INSERT INTO policy_customers (institution, customer_id, kind, agreed_at,"
            " registered_at, last_used_at, lifted_at, special_agreement, sms_result_notice,"
            " overseas_departure, per_transfer_limit, daily_limit, contract_ref,"
            " contract_grade, contract_per_transfer, contract_daily, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows),
        tx.executemany(
            "UPDATE otp_registrations SET customer_id = ? WHERE institution = 'bank-a' AND"
            " serial = ?", owners)))
    db.close()


def requests_for(kind: str, first: int, count: int) -> list[bytes]:
    from authd.v1 import otp_pb2
    from authd.v1 import policy_pb2 as P
    from devices.otp.codes import totp

    now = time.time()
    out = []
    for i in range(first, first + count):
        code = totp(seed_of(i), now, 60)
        if kind == "verify":
            out.append(otp_pb2.VerifyRequest(serial=serial_of(i), code=code).SerializeToString())
            continue
        out.append(P.AuthorizeTransferRequest(
            customer_id=customer_of(i), amount_krw=1_000_000, receiving=P.RECEIVING_OTHER,
            to_account="110-222-333333", channel=P.CHANNEL_INTERNET_BANKING,
            device=P.DeviceInfo(ip="198.51.100.9", mac="00:16:3e:aa:bb:cc"),
            otp=P.OtpPresented(serial=serial_of(i), code=code),
            idempotency_key=f"bench-{i:08d}").SerializeToString())
    return out


def _client(address: str, method: str, bodies: list[bytes], concurrency: int, out: Any) -> None:
    import grpc

    from authd.interceptors import METADATA_INSTITUTION, METADATA_ROLE, METADATA_SUBJECT

    async def go() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        md = ((METADATA_INSTITUTION, "bank-a"), (METADATA_ROLE, "backend"),
              (METADATA_SUBJECT, "bench"))
        async with grpc.aio.insecure_channel(address) as channel:
            call = channel.unary_unary(method)
            todo = iter(bodies)

            async def worker() -> None:
                nonlocal errors
                for body in todo:
                    t0 = time.perf_counter()
                    try:
                        await call(body, metadata=md, timeout=60)
                    except grpc.RpcError:
                        errors += 1
                    latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, errors

    t0 = time.perf_counter()
    latencies, errors = asyncio.run(go())
    out.put((latencies, errors, time.perf_counter() - t0))


def run_load(address: str, server_pid: int, method: str, bodies: list[bytes], clients: int,
             concurrency: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(address, method, bodies[i::clients],
                                               concurrency, queue)) for i in range(clients)]
    cpu0, started = tree_cpu_seconds(server_pid), time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    latencies = [x for r in results for x in r[0]]
    errors = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    return {"rate": (len(latencies) - errors) / elapsed, "failed": errors,
            "p50": percentile(latencies, 50) * 1e3, "p99": percentile(latencies, 99) * 1e3,
            "server_cpu": (tree_cpu_seconds(server_pid) - cpu0) / wall, "load": load1()}


def check_outcomes(store_url: str, customers: int) -> str:
    """What the decisions were (every one must be approved, or the figure means nothing)."""
    from authd.storage import open_database

    db = open_database(store_url)
    rows = db.run(lambda tx: tx.all("SELECT outcome, COUNT(*) FROM policy_decisions"
                                    " GROUP BY outcome"), write=False)
    db.close()
    return ", ".join(f"{n} {o}" for o, n in sorted(rows))


def bench_store(kind: str, args: Any, root: Path) -> list[list[object]]:
    from tests.nodes import Node
    from tests.pgcluster import start_pg_cluster

    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o777)
    pin_file = root.parent / "kek.pin"  # one KEK token for every store of this run
    if not pin_file.exists():
        create_private(pin_file, os.urandom(8).hex().encode())
    cluster = None
    if kind == "sqlite":
        store_url = f"sqlite:///{root / 'bench.db'}"
    else:
        cluster = start_pg_cluster(root / "pg")
        store_url = cluster.url(cluster.create_database())
    n, repeat = args.customers, args.repeat
    rows: list[list[object]] = []
    try:
        cfg = config_for(root / "setup", store_url, pin_file)
        enroll_devices(cfg, 2 * repeat * n)
        setup_customers(cfg, 0, 2 * repeat * n)
        node = Node(root / "node", store_url, {"AUTHD_KEK__PIN_FILE": str(pin_file),
                                                **NO_REFUSAL_LIMIT})
        try:
            runs: dict[str, list[dict[str, float]]] = {"verify": [], "decide": []}
            for r in range(repeat):
                for j, what in enumerate(("verify", "decide")):
                    first = (2 * r + j) * n
                    bodies = requests_for(what, first, n)
                    method = VERIFY if what == "verify" else AUTHORIZE
                    runs[what].append(run_load(node.address, node.proc.pid, method, bodies,
                                               args.clients, args.concurrency))
        finally:
            node.terminate()
        outcomes = check_outcomes(store_url, n)
        for what, label in (("verify", "OtpService.Verify"),
                            ("decide", "PolicyService.AuthorizeTransfer (with Verify)")):
            rate, spread = median_and_spread([x["rate"] for x in runs[what]])
            mid = sorted(runs[what], key=lambda x: x["rate"])[len(runs[what]) // 2]
            rows.append([kind, label, rate, spread, mid["p50"], mid["p99"],
                         sum(int(x["failed"]) for x in runs[what]),
                         f"{mid['server_cpu']:.2f}", f"{mid['load']:.2f}"])
        verify = median_and_spread([x["rate"] for x in runs["verify"]])[0]
        decide = median_and_spread([x["rate"] for x in runs["decide"]])[0]
        rows.append([kind, f"ratio decision / Verify (decisions: {outcomes})",
                     f"{decide / verify:.2f}", "", "", "", "", "", f"{load1():.2f}"])
    finally:
        if cluster is not None and cluster._stop:
            cluster._stop()
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench policy")
    parser.add_argument("--customers", type=int, default=2000, help="calls per run")
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args(argv)
    from bench.common import private_softhsm

    private_softhsm()
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    root = Path(tempfile.mkdtemp(prefix="authd-bench-policy-"))
    if os.geteuid() == 0:
        os.chmod(root, 0o777)  # the PostgreSQL cluster runs as the postgres user
    rows: list[list[object]] = []
    for kind in stores:
        rows.extend(bench_store(kind, args, root / kind))
        print(f"[{kind}] done", flush=True)
    print(f"\n{args.customers:,} calls per run, {args.repeat} runs, {args.clients} client "
          f"processes x {args.concurrency} in flight; durable commits")
    print(table(["store", "call", "per s", "spread", "p50 ms", "p99 ms", "failed",
                 "server cores", "load 1m"], rows))
