"""APDU round trip through authd (raw APDU calls over gRPC) against pyscard directly.

    PYTHONPATH=. python bench/bench_smartcard.py [--count 2000] [--batch 32]

Starts its own pcscd (stops it after) and a virtual PIV card on vpcd reader 0, measures
pyscard directly on that card, then an authd daemon in a separate process (insecure dev mode
on loopback) with the same APDU as unary Transmit calls, over one TransmitStream, and batched
(several APDUs per call). Prints per-APDU latency and the ratio to the direct path.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc
from drivers.pcsc.connection import PcscConnection
from simulators.smartcard import open_slot

READER = "Virtual PCD 00 00"
APDU = bytes.fromhex("00cb3fff035c017e00")  # GET DATA discovery object: 20 bytes + 9000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def timed(fn: Callable[[], object], count: int) -> list[float]:
    for _ in range(min(200, count)):  # warm up
        fn()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def report(name: str, per_apdu: list[float], direct_mean: float | None) -> float:
    mean = statistics.fmean(per_apdu)
    p50 = statistics.median(per_apdu)
    p99 = sorted(per_apdu)[int(len(per_apdu) * 0.99) - 1]
    ratio = f"{mean / direct_mean:5.2f}x" if direct_mean else "  1.00x"
    print(
        f"{name:<34} mean {mean * 1e6:8.1f} us  p50 {p50 * 1e6:8.1f} us  p99 {p99 * 1e6:8.1f}"
        f" us  {ratio}"
    )
    return mean


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench smartcard", description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="authd-bench-sc-"))
    pcscd = subprocess.Popen(["pcscd", "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon: subprocess.Popen[bytes] | None = None
    slot = open_slot(work / "card.json")
    try:
        wait_port(35963)
        slot.insert()
        time.sleep(0.5)
        print(f"APDU: GET DATA (discovery object), {args.count} round trips each, 2 cores shared")
        with PcscConnection(READER) as connection:
            samples = timed(lambda: connection.send_and_receive(APDU), args.count)
        direct = report("pyscard direct (exclusive)", samples, None)

        port = free_port()
        config = work / "authd.toml"
        config.write_text(
            f'data_dir = "{work / "data"}"\n'
            f'[server]\nlisten = "127.0.0.1:{port}"\ninsecure = true\n'
            f'[kek]\nkind = "file"\nkey_file = "{work / "kek.bin"}"\n'
            "[smartcard]\nidle_release_seconds = 30\n"
        )
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "authd.cli", "serve", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        metadata = (("x-authd-institution", "bank-a"), ("x-authd-role", "branch"))
        stub = smartcard_pb2_grpc.SmartcardServiceStub(channel)
        one = pb.TransmitRequest(reader=READER, apdus=[APDU])

        def unary() -> None:
            stub.Transmit(one, metadata=metadata)

        report("authd Transmit (unary, 1 APDU)", timed(unary, args.count), direct)

        requests: list[pb.TransmitRequest] = []
        ready = threading.Condition()

        def feed() -> Iterator[pb.TransmitRequest]:
            while True:
                with ready:
                    ready.wait_for(lambda: bool(requests))
                    request = requests.pop()
                if request is None:
                    return
                yield request

        responses = stub.TransmitStream(feed(), metadata=metadata)

        def streamed() -> None:
            with ready:
                requests.append(one)
                ready.notify()
            next(responses)

        report("authd TransmitStream (1 per msg)", timed(streamed, args.count), direct)
        responses.cancel()

        batch = pb.TransmitRequest(reader=READER, apdus=[APDU] * args.batch)
        calls = max(1, args.count // args.batch)
        batched = timed(lambda: stub.Transmit(batch, metadata=metadata), calls)
        report(f"authd Transmit (batch of {args.batch})", [t / args.batch for t in batched], direct)

        started = time.perf_counter()
        for _ in range(args.count):
            channel.unary_unary("/grpc.health.v1.Health/Check")(b"")
        empty = (time.perf_counter() - started) / args.count
        print(
            f"{'gRPC empty unary (health check)':<34} mean {empty * 1e6:8.1f} us  (floor of one"
            " call)"
        )
        channel.close()
    finally:
        slot.remove()
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
        pcscd.send_signal(signal.SIGTERM)
        pcscd.wait(timeout=10)


if __name__ == "__main__":
    main()
