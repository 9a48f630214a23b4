"""What the branch → center hop costs: HID OTP provisioning and braille card issuance through a
branch node and its link to the center, against the same work in one process holding both roles.

    python -m bench topology [--count N] [--repeat R] [--store sqlite|postgresql]
                             [--device-delay-ms D]

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
job, the center records the print: split, two calls over the link. Each figure is the median
of ``--repeat`` runs (min-max beside it), with the machine's load and the CPU seconds of each
node per operation.
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

from authd.client import dev_channel
from authd.demo_steps.topology import (
    ServeProcess,
    branch_config,
    center_config,
    create_pki,
    server_tls,
)
from authd.v1 import hid_otp_pb2 as H
from authd.v1 import hid_otp_pb2_grpc, security_card_pb2_grpc
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
    raw = {"roles": ["branch", "center"], "server": {**server_tls(pki), "insecure": True},
           **_devices(embosser)}
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
            op: Callable[[int], Any]) -> Run:
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


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench topology")
    parser.add_argument("--count", type=int, default=100, help="operations per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--device-delay-ms", type=int, default=0,
                        help="the simulated HID device's time per command")
    args = parser.parse_args(argv)

    from simulators.security_card.embosser import EmbosserSimulator

    root = Path(tempfile.mkdtemp(prefix="authd-bench-topology-"))
    os.chmod(root, 0o755)  # the PostgreSQL cluster's user reaches its directory inside
    cluster = None
    private_softhsm()  # one KEK token for every node of this run
    pin = root / "kek.pin"
    pin.write_text(os.urandom(8).hex())
    env = {"AUTHD_KEK__PIN_FILE": str(pin)}
    results: dict[str, dict[str, list[Run]]] = {}
    try:
        pki = create_pki(root / "pki", [INSTITUTION])
        with EmbosserSimulator() as embosser:
            for n, build in enumerate((one_process, split)):
                if args.store == "postgresql":
                    from tests.pgcluster import start_pg_cluster

                    cluster = cluster or start_pg_cluster(root / "pg")
                    store_url = cluster.url(cluster.create_database())
                else:
                    store_url = f"sqlite:///{root / f'store-{n}.db'}"
                layout = build(root / f"layout-{n}", pki, store_url, env, embosser.address)
                try:
                    results[layout.name] = bench_layout(layout, args, 50_000_000 * (n + 1))
                finally:
                    layout.close()
    finally:
        if cluster is not None and cluster._stop:
            cluster._stop()
        shutil.rmtree(root, ignore_errors=True)

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
