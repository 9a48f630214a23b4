"""The transport floor: an empty grpc.aio unary handler on the same server stack as authd.

    python -m bench.empty_server [--listen 127.0.0.1:0] [--processes N]

Same grpc.aio server options as ``authd serve`` (``authd.server.server_options`` of the
default configuration: message and stream limits, flow control, connection timeouts,
SO_REUSEPORT when several processes share the port), one event loop per process, but a
handler that does no work: no caller parsing, no access log, no protobuf, an empty answer.
``/bench.Empty/Call`` is the call to load; the answer's body is the 5-byte gRPC frame of an
empty message, so a load generator can count answered calls from the bytes it received. It
prints ``listening on port P`` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

import grpc

from authd import config as configmod
from authd.limits import RequestLimits
from authd.server import server_options

METHOD = "/bench.Empty/Call"


def _identity(data: bytes) -> bytes:
    return data


async def _call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b""


async def serve(listen: str, reuse_port: bool) -> None:
    config = configmod.load(None, environ={}, overrides={
        "server": {"reuse_port": reuse_port}})
    server = grpc.aio.server(options=server_options(config, RequestLimits(config, [])))
    handler = grpc.method_handlers_generic_handler("bench.Empty", {
        "Call": grpc.unary_unary_rpc_method_handler(
            _call, request_deserializer=_identity, response_serializer=_identity)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(listen)
    await server.start()
    print(f"listening on port {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(0.5)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.empty_server")
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args(argv)
    if args.processes <= 1:
        asyncio.run(serve(args.listen, args.reuse_port))
        return 0
    # Several processes on one port, as `[server] processes = N` runs authd.
    import socket

    host = args.listen.rsplit(":", 1)[0]
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    children = [subprocess.Popen([sys.executable, "-m", "bench.empty_server", "--listen",
                                  f"{host}:{port}", "--reuse-port"], stdout=subprocess.PIPE,
                                 text=True) for _ in range(args.processes)]
    for child in children:
        assert child.stdout is not None
        child.stdout.readline()

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(f"listening on port {port}", flush=True)
    for child in children:
        child.wait()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    sys.exit(main(sys.argv[1:]))
