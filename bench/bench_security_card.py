"""Security cards: challenge + verify pairs per second through authd, and the same in process.

    PYTHONPATH=. python bench/bench_security_card.py [--seconds 5] [--clients 8] [--cards 64]
        [--store-url postgresql://...]

Each pair is StartChallenge then VerifyAnswer with the right digits (read off the printed
cards, as a customer would), through a real gRPC channel in the insecure development mode, with
durable commits and the audit records. The in-process line calls the same service object
without gRPC; the ratio is the daemon's overhead. Client and server share the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authd import config as configmod
from authd.client import dev_channel
from authd.context import Caller, Role, reset_caller, set_caller
from authd.security_card.feature import SecurityCardFeature
from authd.server import BackgroundServer
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc
from devices.security_card.printed import read_printed_card

INSTITUTION = "bank-a"


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def _answer(codes: dict[int, str], first: Any, second: Any, one_based: bool) -> str:
    shift = 1 if one_based else 0
    a = codes[first.code_number if one_based else first.number]
    b = codes[second.code_number if one_based else second.number]
    pos_a = first.digit_positions if one_based else first.positions
    pos_b = second.digit_positions if one_based else second.positions
    return "".join(a[p - shift] for p in pos_a) + "".join(b[p - shift] for p in pos_b)


def _run(clients: int, seconds: float, work: Callable[[int], None]) -> tuple[int, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds
    barrier = threading.Barrier(clients)

    def loop(i: int) -> None:
        barrier.wait()
        n = 0
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            work(i * 1_000_000 + n)
            latencies[i].append(time.perf_counter() - t0)
            n += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = [x for lat in latencies for x in lat]
    return len(merged), merged


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cards", type=int, default=64)
    parser.add_argument("--store-url", default="")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="authd-bench-sc-"))
    raw: dict[str, Any] = {
        "data_dir": str(data_dir),
        "simulators": True,
        "server": {"listen": "127.0.0.1:0", "insecure": True, "grace_seconds": 1.0},
        "kek": {"kind": "file"},
    }
    if args.store_url:
        raw["store"] = {"url": args.store_url}
    config = configmod.load(None, environ={}, overrides=raw)
    server = BackgroundServer(config)
    try:
        address = f"127.0.0.1:{server.port}"
        branch = pb_grpc.SecurityCardServiceStub(dev_channel(address, INSTITUTION, "branch", "t"))
        backend_channels = [dev_channel(address, INSTITUTION, "backend", f"ib-{i}")
                            for i in range(args.clients)]
        backends = [pb_grpc.SecurityCardServiceStub(ch) for ch in backend_channels]
        printer = server.app.require(SecurityCardFeature).simulated["printer"]
        cards: list[tuple[str, dict[int, str]]] = []
        for i in range(args.cards):
            issued = branch.IssueCard(pb.IssueSecurityCardRequest(
                customer_id=f"bench-{i}", medium=pb.SECURITY_CARD_MEDIUM_PRINTED))
            codes = read_printed_card(printer.last_job().data.decode("utf-8"))
            cards.append((issued.card.serial, codes))

        failures = 0

        def grpc_pair(n: int) -> None:
            nonlocal failures
            serial, codes = cards[n % len(cards)]
            stub = backends[(n // 1_000_000) % len(backends)]
            ch = stub.StartChallenge(pb.StartSecurityCardChallengeRequest(serial=serial))
            r = stub.VerifyAnswer(pb.VerifySecurityCardAnswerRequest(
                challenge_id=ch.challenge_id, answer=_answer(codes, ch.first, ch.second, True)))
            if not r.accepted:
                failures += 1

        service = server.app.require(SecurityCardFeature).service
        caller = Caller(INSTITUTION, Role.BACKEND, "bench")

        def direct_pair(n: int) -> None:
            nonlocal failures
            token = set_caller(caller)
            try:
                serial, codes = cards[n % len(cards)]
                started = service.start_challenge(INSTITUTION, serial, "")
                ch = started.challenge
                r = service.verify(INSTITUTION, ch.id,
                                   _answer(codes, ch.first, ch.second, False))
                if not r.verdict.accepted:
                    failures += 1
            finally:
                reset_caller(token)

        _run(args.clients, min(1.0, args.seconds), grpc_pair)  # warm up
        rows = []
        for name, work in (("gRPC (authd)", grpc_pair), ("in-process", direct_pair)):
            cpu0 = os.times()
            count, lat = _run(args.clients, args.seconds, work)
            cpu1 = os.times()
            cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
            rows.append((name, count / args.seconds, 1000 * statistics.median(lat),
                         1000 * _percentile(lat, 99), cpu / args.seconds))
        store = server.app.db.dialect
        print(f"security cards: challenge+verify pairs, {args.clients} clients, "
              f"{args.cards} cards, {args.seconds:.0f} s each, store={store}, "
              f"durable commits, audit on; wrong outcomes: {failures}")
        print(f"{'path':<14} {'pairs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU cores':>10}")
        for name, rate, p50, p99, cpu in rows:
            print(f"{name:<14} {rate:>9.0f} {p50:>8.2f} {p99:>8.2f} {cpu:>10.2f}")
        print(f"ratio gRPC / in-process: {rows[0][1] / rows[1][1]:.2f}")
        for ch in backend_channels:
            ch.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
