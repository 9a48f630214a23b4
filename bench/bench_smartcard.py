"""APDU round trip through authd (raw APDU calls over gRPC) against pyscard directly.

    python -m bench smartcard [--count 2000] [--batch 32] [--rounds 3] [--seconds 2]
                              [--front python|native]

Starts a pcscd of its own (own socket, own vpcd ports; a system pcscd is not touched) and a
virtual PIV card in its reader 0, then an authd daemon in a separate process (insecure dev
mode on loopback). Each round measures, on the same card and the same APDU (GET DATA of the
discovery object: 20 bytes + 9000): pyscard directly (an exclusive PC/SC connection in this
process), authd `Transmit` with one APDU per call (unary), `TransmitStream` with one APDU per
message, `Transmit` with `--batch` APDUs per call, and an empty gRPC unary call (health check)
of the same server as the floor of one call; then unary `Transmit` from h2load (a native
client posting gRPC frames over h2c: one connection, one call in flight, for `--seconds`; only
the calls the daemon's metrics count as OK are counted), since a Python gRPC client's own round
trip is many times a card's. `--front native`: authd-front serves the port ([server] front),
handing Transmit to the daemon over its call link. Prints per-APDU figures side by side with the
ratio to direct, the spread over the rounds, and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.v1 import smartcard_pb2 as pb
from authd.v1 import smartcard_pb2_grpc
from bench import h2load
from bench.common import percentile, proc_cpu_seconds, scrape
from simulators.smartcard import PrivatePcscd, open_slot

READER = "Virtual PCD 00 00"
APDU = bytes.fromhex("00cb3fff035c017e00")  # GET DATA discovery object: 20 bytes + 9000
METADATA = (("x-authd-institution", "bank-a"), ("x-authd-role", "branch"))


PATHS = {
    "direct": "pyscard direct (exclusive)",
    "unary": "authd Transmit, 1 APDU per call",
    "stream": "authd TransmitStream, 1 per message",
    "batch": "authd Transmit, {batch} per call",
    "empty": "empty gRPC unary (health check)",
    "native": "authd Transmit, 1 per call, h2load",
}


@dataclass
class Measured:
    name: str
    per_apdu: list[float] = field(default_factory=list)  # seconds, all rounds
    round_means: list[float] = field(default_factory=list)
    # CPU seconds per APDU of each process over each round (daemon, authd-front, pcscd, ...)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def timed(fn: Callable[[], object], count: int, per_call: int = 1) -> list[float]:
    for _ in range(min(200, count)):  # warm up
        fn()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) / per_call)
    return samples


def start_daemon(work: Path, front: str, metrics_port: int) -> tuple[subprocess.Popen[str], int]:
    config = work / "authd.toml"
    config.write_text(
        f'data_dir = "{work / "data"}"\n'
        '[server]\nlisten = "127.0.0.1:0"\ninsecure = true\n'
        f'front = "{front}"\nmetrics_listen = "127.0.0.1:{metrics_port}"\n'
        f'[kek]\nkind = "file"\nkey_file = "{work / "kek.bin"}"\n'
        "[smartcard]\nidle_release_seconds = 1.0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "authd.cli", "serve", "--config", str(config)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert daemon.stdout is not None
    line = daemon.stdout.readline()
    if not line.startswith("authd listening on port "):
        daemon.kill()
        raise SystemExit("authd did not start")
    return daemon, int(line.rsplit(" ", 1)[1])


class Streamer:
    """One TransmitStream kept open; `call()` sends one message and waits for its answer."""

    def __init__(self, stub: smartcard_pb2_grpc.SmartcardServiceStub,
                 request: pb.TransmitRequest) -> None:
        self._requests: queue.SimpleQueue[pb.TransmitRequest | None] = queue.SimpleQueue()
        self._request = request
        self._responses = stub.TransmitStream(self._feed(), metadata=METADATA)

    def _feed(self) -> Iterator[pb.TransmitRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def call(self) -> None:
        self._requests.put(self._request)
        next(self._responses)

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench smartcard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="round trips per path per round")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="h2load run per round")
    parser.add_argument("--front", choices=["python", "native"], default="python",
                        help="who serves authd's port ([server] front)")
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"which paths to measure, of {','.join(PATHS)} (direct always)")
    args = parser.parse_args(argv)
    chosen = {"direct", *(p.strip() for p in args.paths.split(",") if p.strip())}
    if chosen - set(PATHS):
        parser.error(f"unknown paths: {', '.join(sorted(chosen - set(PATHS)))}")
    if not h2load.available():
        raise SystemExit("h2load not found: install Debian's nghttp2-client (scripts/setup.sh)")
    if args.front == "native":
        from bench.bench_otp import native_front_binary

        native_front_binary()
    work = Path(tempfile.mkdtemp(prefix="authd-bench-sc-"))
    pcscd = PrivatePcscd(work / "pcscd")
    pcscd.start()
    pcscd.activate()  # pyscard here and the daemon (inherits the environment)
    from drivers.pcsc.connection import PcscConnection  # after activate: libpcsclite reads it
    from drivers.pcsc.monitor import ReaderMonitor, wait_for

    daemon: subprocess.Popen[str] | None = None
    slot = open_slot(work / "card.json", pcscd.port(0))
    load_before = os.getloadavg()
    try:
        slot.insert()
        monitor = ReaderMonitor(poll_ms=200).start()
        wait_for(monitor, lambda snap: snap.readers.get(READER) is not None, timeout=10)
        monitor.stop()
        metrics_port = _free_port()
        daemon, port = start_daemon(work, args.front, metrics_port)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        stub = smartcard_pb2_grpc.SmartcardServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        one = pb.TransmitRequest(reader=READER, apdus=[APDU])
        batch = pb.TransmitRequest(reader=READER, apdus=[APDU] * args.batch)
        deadline = time.monotonic() + 20
        while True:  # the daemon's monitor sees the card
            try:
                stub.Transmit(one, metadata=METADATA, timeout=5)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        paths = {key: Measured(name.format(batch=args.batch)) for key, name in PATHS.items()}
        url = f"http://127.0.0.1:{port}/authd.v1.SmartcardService/Transmit"
        jobs = [(h2load.frame(one.SerializeToString()),
                 h2load.caller_headers("bank-a", "branch", "bench"))]

        def answered() -> int:
            return int(scrape(metrics_port, "authd_rpcs_total",
                              method="/authd.v1.SmartcardService/Transmit", code="OK"))
        empty_request = health_pb2.HealthCheckRequest()
        calls = max(1, args.count // args.batch)
        print(f"APDU: GET DATA (discovery object); {args.count} round trips per path and round,"
              f" {args.rounds} rounds; {os.cpu_count()} cores; front {args.front}", flush=True)
        processes = _processes(daemon.pid, pcscd)
        for _round in range(args.rounds):
            # authd holds the card while calls come (released after 1 s idle)
            with _cpu(paths["direct"], {"this process": os.getpid(), "pcscd": processes["pcscd"]},
                      args.count):
                _add(paths["direct"], _direct(PcscConnection, args.count))
            if "unary" in chosen:
                with _cpu(paths["unary"], processes, args.count + min(200, args.count)):
                    _add(paths["unary"], timed(lambda: stub.Transmit(one, metadata=METADATA),
                                               args.count))
            if "stream" in chosen:
                streamer = Streamer(stub, one)
                with _cpu(paths["stream"], processes, args.count + min(200, args.count)):
                    _add(paths["stream"], timed(streamer.call, args.count))
                streamer.close()
            if "batch" in chosen:
                with _cpu(paths["batch"], processes,
                          (calls + min(200, calls)) * args.batch):
                    _add(paths["batch"], timed(lambda: stub.Transmit(batch, metadata=METADATA),
                                               calls, args.batch))
            if "empty" in chosen:
                _add(paths["empty"], timed(lambda: health.Check(empty_request), args.count))
            if "native" in chosen:
                native = {**processes, "card (this process)": os.getpid()}
                before = {name: proc_cpu_seconds(pid) for name, pid in native.items()}
                run = h2load.run_counted(url, jobs, answered, duration=args.seconds,
                                         connections=1, streams=1)
                if run.answered:
                    paths["native"].per_apdu.extend(run.latencies)
                    paths["native"].round_means.append(run.elapsed / run.answered)
                    for name, pid in native.items():
                        paths["native"].cpu.setdefault(name, []).append(
                            (proc_cpu_seconds(pid) - before[name]) / run.answered)
                    paths["native"].cpu.setdefault("h2load", []).append(
                        run.client_cpu / run.answered)
        channel.close()
        load_after = os.getloadavg()
        _print(paths, load_before, load_after)
    finally:
        slot.remove()
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
        pcscd.stop()
        shutil.rmtree(work, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _direct(connection_type: type, count: int) -> list[float]:
    """pyscard straight to pcscd; waits while authd still holds the card exclusively."""
    deadline = time.monotonic() + 40
    while True:
        try:
            connection = connection_type(READER)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with connection:
        return timed(lambda: connection.send_and_receive(APDU), count)


def _processes(daemon: int, pcscd: PrivatePcscd) -> dict[str, int]:
    """The processes whose CPU an APDU costs: the daemon, its front end (if any), pcscd."""
    found = {"daemon": daemon}
    for task in Path(f"/proc/{daemon}/task").iterdir():
        for child in (task / "children").read_text().split():
            if "authd-front" in Path(f"/proc/{child}/cmdline").read_bytes().decode(
                    errors="replace"):
                found["authd-front"] = int(child)
    assert pcscd.process is not None
    found["pcscd"] = pcscd.process.pid
    return found


@contextlib.contextmanager
def _cpu(path: Measured, processes: dict[str, int], apdus: int) -> Iterator[None]:
    """Adds each process's CPU seconds per APDU over the block to ``path.cpu``."""
    before = {name: proc_cpu_seconds(pid) for name, pid in processes.items()}
    yield
    for name, pid in processes.items():
        path.cpu.setdefault(name, []).append((proc_cpu_seconds(pid) - before[name]) / apdus)


def _add(path: Measured, samples: list[float]) -> None:
    path.per_apdu.extend(samples)
    path.round_means.append(statistics.fmean(samples))


def _print(paths: dict[str, Measured], before: tuple[float, ...],
           after: tuple[float, ...]) -> None:
    direct = statistics.median(paths["direct"].round_means)
    print(f"{'path':<38} {'mean µs':>8} {'rounds min-max':>15} {'p50':>7} {'p99':>8}"
          f" {'÷ direct':>9}")
    for key, path in paths.items():
        if not path.round_means:
            continue
        mean = statistics.median(path.round_means)
        spread = f"{min(path.round_means) * 1e6:.0f}-{max(path.round_means) * 1e6:.0f}"
        ratio = "" if key == "empty" else f"{mean / direct:8.2f}x"
        print(f"{path.name:<38} {mean * 1e6:8.1f} {spread:>15}"
              f" {percentile(path.per_apdu, 50) * 1e6:7.1f}"
              f" {percentile(path.per_apdu, 99) * 1e6:8.1f} {ratio:>9}")
    print("CPU µs per APDU, median of rounds (min-max):")
    for path in paths.values():
        if path.cpu:
            parts = [f"{name} {statistics.median(v) * 1e6:.0f} ({min(v) * 1e6:.0f}-"
                     f"{max(v) * 1e6:.0f})" for name, v in path.cpu.items()]
            print(f"  {path.name:<38} " + ", ".join(parts))

    def median(key: str) -> float:
        return statistics.median(paths[key].round_means or [float("nan")])

    print(f"unary ÷ direct {median('unary') / direct:.2f}x (Python client),"
          f" {median('native') / direct:.2f}x (h2load), batched ÷ direct"
          f" {median('batch') / direct:.2f}x;"
          f" unary minus empty call {(median('unary') - median('empty')) * 1e6:.0f} µs")
    print(f"load average (1, 5, 15 min) before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f},"
          f" after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")


if __name__ == "__main__":
    main()
