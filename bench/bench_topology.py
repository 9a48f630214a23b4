"""What the branch → center hop costs: HID OTP provisioning and braille card issuance through a
branch node and its link to the center, against the same work in one process holding both roles;
and the same center call made through a branch node against made directly at the center.

    python -m bench topology [--count N] [--repeat R] [--store sqlite|postgresql]
                             [--device-delay-ms D] [--part all|layouts|hop]

Both layouts run as ``authd serve`` processes on this machine, the client (a teller terminal,
one call at a time: a round trip is what a teller waits for) in the benchmark process:

- **one process**: roles branch and center, the store on SQLite (or PostgreSQL);
- **split**: a center node on the same store, and a branch node whose link reaches it over
  mTLS (the branch node's certificate; a fresh TCP connection is kept open by gRPC).

Provisioning is, in one process, a read of the provisioning records, the reservation (seed
from the key-encryption-key token, sealed), programming the simulated device (two slots),
and the confirmation (enrollment, record, audit) in a durable transaction. Split, the three
center steps are three calls over the link. Card issuance: the center generates and seals
the codes and renders the braille, the branch's embosser (a simulator on loopback) takes the
job, the center records the print: split, two calls over the link.

**The hop** (``--part hop``): a center node and a branch node, both serving mTLS; bank A's
teller (its own certificate) makes the same OTP center calls once at the branch node, which
forwards them over its link (the branch node's certificate, the teller as operator), and once
directly at the center node: ``OtpService.GetStatus`` (a read), ``OtpService.Enroll`` (a durable
write and its audit record) and ``CustomerService.ListCustomerMedia`` (a read over every
medium's rows). Each figure is the median of ``--repeat`` runs (min-max beside it), with the
machine's load and the CPU seconds of each node per operation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from authd.client import dev_channel, identity_channel
from authd.demo_steps.topology import (
    ServeProcess,
    branch_config,
    center_config,
    create_pki,
    server_tls,
)
from authd.files import create_private
from authd.v1 import (
    customer_pb2,
    customer_pb2_grpc,
    hid_otp_pb2_grpc,
    otp_pb2,
    otp_pb2_grpc,
    security_card_pb2_grpc,
)
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import security_card_pb2 as S
from bench.common import percentile, private_softhsm, table, tree_cpu_seconds

INSTITUTION = "bank-a"


@dataclass
class Layout:
    name: str
    teller: grpc.Channel  # where the teller's terminal calls
    nodes: list[ServeProcess]

    def cpu(self) -> list[float]:
        return [tree_cpu_seconds(n.proc.pid) for n in self.nodes]

    def close(self) -> None:
        self.teller.close()
        for node in reversed(self.nodes):
            node.stop()


def _devices(embosser: str) -> dict[str, Any]:
    """The branch's devices: the embosser simulator, simulated HID devices, no PC/SC."""
    return {"security_card": {"embosser": embosser, "printer": ""},
            "hid_otp": {"monitor_interval": 0}, "smartcard": {"enabled": False}}


def one_process(root: Path, pki: Path, store_url: str, env: dict[str, str],
                embosser: str) -> Layout:
    raw = {"roles": ["branch", "center"], "simulators": True,
           "server": {**server_tls(pki), "insecure": True}, **_devices(embosser)}
    node = ServeProcess("both-roles", root / "both", raw, store_url=store_url, env=env)
    return Layout("one process", dev_channel(node.address, INSTITUTION, "branch", "teller"),
                  [node])


def split(root: Path, pki: Path, store_url: str, env: dict[str, str], embosser: str) -> Layout:
    center = ServeProcess("center", root / "center", center_config(pki), store_url=store_url,
                          env=env)
    raw = branch_config(pki, INSTITUTION, [center.address], server={"insecure": True},
                        **_devices(embosser))
    branch = ServeProcess("branch", root / "branch", raw,
                          store_url=f"sqlite:///{root / 'branch' / 'authd.db'}", env=env)
    return Layout("split (branch → center)",
                  dev_channel(branch.address, INSTITUTION, "branch", "teller"),
                  [center, branch])


@dataclass
class Run:
    per_second: float
    p50_ms: float
    p99_ms: float
    cpu_ms: list[float]  # per node, per operation
    load: float


def measure(layout: Layout, count: int, prepare: Callable[[int], Any],
            op: Callable[[Any], Any]) -> Run:
    items = [prepare(i) for i in range(count)]
    cpu0, load0 = layout.cpu(), os.getloadavg()[0]
    latencies = []
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        op(item)
        latencies.append(time.perf_counter() - t0)
    took = time.perf_counter() - started
    cpu1 = layout.cpu()
    return Run(count / took, percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
               [(b - a) * 1000 / count for a, b in zip(cpu0, cpu1, strict=True)],
               max(load0, os.getloadavg()[0]))


def bench_layout(layout: Layout, args: argparse.Namespace, base: int) -> dict[str, list[Run]]:
    hid = hid_otp_pb2_grpc.HidOtpServiceStub(layout.teller)
    sim = hid_otp_pb2_grpc.HidSimulatorServiceStub(layout.teller)
    cards = security_card_pb2_grpc.SecurityCardServiceStub(layout.teller)
    serials = iter(range(base, base + 10_000_000))
    customers = iter(range(10_000_000))

    def plug(_: int) -> int:
        serial = next(serials)
        sim.PlugDevice(H.PlugSimulatedHidDeviceRequest(
            device_serial=serial, processing_delay_ms=args.device_delay_ms), timeout=30)
        return serial

    def provision(serial: int) -> None:
        hid.ProvisionDevice(H.ProvisionHidDeviceRequest(
            customer_id="C-1",
            device_serial=serial, operator_id="bench"), timeout=60)

    def customer(_: int) -> str:
        return f"bench-{next(customers)}"

    def issue(customer_id: str) -> None:
        answer = cards.IssueCard(S.IssueSecurityCardRequest(
            customer_id=customer_id, medium=S.SECURITY_CARD_MEDIUM_BRAILLE), timeout=60)
        if answer.print_job.state != S.SECURITY_CARD_PRINT_COMPLETED:
            raise RuntimeError(f"the embosser did not take the card: {answer.print_job}")

    warm = max(5, args.count // 10)
    measure(layout, warm, plug, provision)
    measure(layout, warm, customer, issue)
    out: dict[str, list[Run]] = {"provision": [], "issue": []}
    for _ in range(args.repeat):
        out["provision"].append(measure(layout, args.count, plug, provision))
        out["issue"].append(measure(layout, args.count, customer, issue))
    return out


def hop_nodes(root: Path, pki: Path, store_url: str, env: dict[str, str]) -> list[ServeProcess]:
    """A center node and a branch node linked to it, both serving mTLS."""
    center = ServeProcess("center", root / "center", center_config(pki), store_url=store_url,
                          env=env)
    raw = branch_config(pki, INSTITUTION, [center.address], hid_otp={"monitor_interval": 0},
                        smartcard={"enabled": False})
    branch = ServeProcess("branch", root / "branch", raw,
                          store_url=f"sqlite:///{root / 'branch' / 'authd.db'}", env=env)
    return [center, branch]


def bench_hop(nodes: list[ServeProcess], pki: Path,
              args: argparse.Namespace) -> dict[str, dict[str, list[Run]]]:
    """The same calls of bank A's teller at the center directly and through the branch node."""
    center, branch = nodes
    routes = {"direct at the center": center, "through the branch node": branch}
    out: dict[str, dict[str, list[Run]]] = {}
    serials = iter(range(10_000_000))
    channels = {name: identity_channel(node.address, pki, f"{INSTITUTION}-teller")
                for name, node in routes.items()}
    try:
        otp = {name: otp_pb2_grpc.OtpServiceStub(ch) for name, ch in channels.items()}
        media = {name: customer_pb2_grpc.CustomerServiceStub(ch)
                 for name, ch in channels.items()}
        # Something to read: a device of the customer the reads ask for.
        otp["direct at the center"].Enroll(otp_pb2.EnrollRequest(
            serial="OTP-HOP-READ", operator_id="bench", customer_id="C-HOP",
            parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)

        def enroll(name: str) -> Callable[[str], Any]:
            # Devices of other customers: the customer the reads ask for keeps one.
            return lambda serial: otp[name].Enroll(otp_pb2.EnrollRequest(
                serial=serial, operator_id="bench", customer_id=f"C-{serial[-7:]}",
                parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_TOTP)), timeout=30)

        def fresh(_: int) -> str:
            return f"OTP-HOP-{next(serials):07d}"

        def same(_: int) -> str:
            return "OTP-HOP-READ"

        ops: dict[str, Callable[[str], tuple[Callable[[int], Any], Callable[[Any], Any]]]] = {
            "OtpService.GetStatus": lambda name: (same, lambda s: otp[name].GetStatus(
                otp_pb2.GetStatusRequest(serial=s), timeout=30)),
            "OtpService.Enroll": lambda name: (fresh, enroll(name)),
            "CustomerService.ListCustomerMedia": lambda name: (same, lambda s: media[name]
                                                               .ListCustomerMedia(
                customer_pb2.ListCustomerMediaRequest(customer_id="C-HOP"), timeout=30)),
        }
        layout = Layout("hop", channels["direct at the center"], nodes)
        for op, make in ops.items():
            out[op] = {name: [] for name in routes}
            for name in routes:
                measure(layout, max(5, args.count // 10), *make(name))  # warm up
            for _ in range(args.repeat):
                for name in routes:  # interleaved: both routes see the same machine
                    out[op][name].append(measure(layout, args.count, *make(name)))
    finally:
        for ch in channels.values():
            ch.close()
    return out


def print_hop(results: dict[str, dict[str, list[Run]]], args: argparse.Namespace) -> None:
    print(f"\nThe hop: bank A's teller, one call at a time, at the center directly and through "
          f"a branch node ({args.count} per run, median of {args.repeat}; store {args.store}; "
          f"both nodes mTLS)")
    rows = []
    for op, routes in results.items():
        direct = statistics.median(r.p50_ms for r in routes["direct at the center"])
        for name, runs in routes.items():
            p50 = statistics.median(r.p50_ms for r in runs)
            cpu = [statistics.median(r.cpu_ms[i] for r in runs)
                   for i in range(len(runs[0].cpu_ms))]
            rows.append([op, name, statistics.median(r.per_second for r in runs),
                         _spread([r.per_second for r in runs]), p50,
                         statistics.median(r.p99_ms for r in runs), p50 - direct,
                         " + ".join(f"{c:.1f}" for c in cpu), max(r.load for r in runs)])
    print(table(["call", "route", "calls/s", "spread", "p50 ms", "p99 ms", "hop p50 ms",
                 "CPU ms/call center + branch", "load"], rows))


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench topology")
    parser.add_argument("--count", type=int, default=100, help="operations per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--device-delay-ms", type=int, default=0,
                        help="the simulated HID device's time per command")
    parser.add_argument("--part", choices=["all", "layouts", "hop"], default="all",
                        help="layouts: one process against split; hop: one call through a "
                             "branch node against directly at the center")
    args = parser.parse_args(argv)

    from simulators.security_card.embosser import EmbosserSimulator

    root = Path(tempfile.mkdtemp(prefix="authd-bench-topology-"))
    os.chmod(root, 0o755)  # the PostgreSQL cluster's user reaches its directory inside
    cluster = None
    private_softhsm()  # one KEK token for every node of this run
    pin = root / "kek.pin"
    create_private(pin, os.urandom(8).hex().encode())  # the KEK token's PIN, 0600
    env = {"AUTHD_KEK__PIN_FILE": str(pin)}
    results: dict[str, dict[str, list[Run]]] = {}
    hop: dict[str, dict[str, list[Run]]] = {}

    def store_url(n: int) -> str:
        nonlocal cluster
        if args.store == "postgresql":
            from tests.pgcluster import start_pg_cluster

            cluster = cluster or start_pg_cluster(root / "pg")
            return cluster.url(cluster.create_database())
        return f"sqlite:///{root / f'store-{n}.db'}"

    try:
        pki = create_pki(root / "pki", [INSTITUTION])
        if args.part in ("all", "layouts"):
            with EmbosserSimulator() as embosser:
                for n, build in enumerate((one_process, split)):
                    layout = build(root / f"layout-{n}", pki, store_url(n), env,
                                   embosser.address)
                    try:
                        results[layout.name] = bench_layout(layout, args, 50_000_000 * (n + 1))
                    finally:
                        layout.close()
        if args.part in ("all", "hop"):
            nodes = hop_nodes(root / "hop", pki, store_url(2), env)
            try:
                hop = bench_hop(nodes, pki, args)
            finally:
                for node in reversed(nodes):
                    node.stop()
    finally:
        if cluster is not None and cluster._stop:
            cluster._stop()
        shutil.rmtree(root, ignore_errors=True)

    if hop:
        print_hop(hop, args)
    if not results:
        return
    print(f"Teller round trips, one call at a time ({args.count} per run, median of "
          f"{args.repeat}; store {args.store}; device delay {args.device_delay_ms} ms; "
          f"{os.cpu_count()} cores shared by the client and every node)")
    rows = []
    names = list(results)
    for op, label in (("provision", "HID provisioning"), ("issue", "braille card issuance")):
        base = statistics.median(r.per_second for r in results[names[0]][op])
        for name in names:
            runs = results[name][op]
            rate = statistics.median(r.per_second for r in runs)
            cpu = [statistics.median(r.cpu_ms[i] for r in runs)
                   for i in range(len(runs[0].cpu_ms))]
            rows.append([label, name, rate, _spread([r.per_second for r in runs]),
                         statistics.median(r.p50_ms for r in runs),
                         statistics.median(r.p99_ms for r in runs),
                         " + ".join(f"{c:.1f}" for c in cpu), rate / base,
                         max(r.load for r in runs)])
    print(table(["operation", "layout", "ops/s", "spread", "p50 ms", "p99 ms",
                 "node CPU ms/op", "vs one", "load"], rows))
    print("node CPU: the single node; split: center + branch")
