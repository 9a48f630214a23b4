"""Several server processes on one port (SO_REUSEPORT) for a center-role node.

One Python process serves gRPC on about one core; a center node with more cores runs
``[server] processes = N`` copies of itself, each with its own verification engine, all on the
same store, where row locks keep the counters exact. Branch devices belong to one process, so
this is for ``roles = ["center"]`` only. The parent starts the workers one after another (the
first one also migrates the store and creates the data key), forwards SIGTERM and SIGINT to
them, and exits when they have all finished.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
from types import FrameType

from authd import config as configmod
from devices.errors import BadRequest

log = logging.getLogger("authd.workers")


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _child_argv(argv: list[str], listen: str) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--listen":
            skip = True
            continue
        if arg.startswith("--listen="):
            continue
        out.append(arg)
    return [*out, "--listen", listen]


def worker_metrics_listen(metrics_listen: str, index: int) -> str:
    """Worker ``index``'s metrics address: a fixed port P gives P + index (PORT, PORT+1, ...);
    port 0 stays 0, each worker binding a free port of its own (named, as by one process, in
    its ``authd serving`` log line)."""
    host, port_text = metrics_listen.rsplit(":", 1)
    port = int(port_text)
    return f"{host}:{port + index if port else 0}"


def serve_workers(cfg: configmod.Config, argv: list[str]) -> int:
    n = cfg.server.processes
    if set(cfg.roles) != {"center"}:
        raise BadRequest("server.processes > 1 is for center-role nodes (roles = "
                              "[\"center\"]): branch devices belong to one process")
    host, port_text = cfg.server.listen.rsplit(":", 1)
    port = int(port_text) or _free_port(host.strip("[]"))
    listen = f"{host}:{port}"
    env = {**os.environ, "AUTHD_SERVER__PROCESSES": "1", "AUTHD_SERVER__REUSE_PORT": "true"}
    workers: list[subprocess.Popen[str]] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(n):
        worker_env = dict(env)
        if cfg.server.metrics_listen:
            worker_env["AUTHD_SERVER__METRICS_LISTEN"] = (
                f'"{worker_metrics_listen(cfg.server.metrics_listen, index)}"')
        worker = subprocess.Popen([sys.executable, "-m", "authd.cli", *_child_argv(argv, listen)],
                                  env=worker_env,
                                  stdout=subprocess.PIPE, text=True)
        workers.append(worker)
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if not line.startswith("authd listening on port "):
            forward(signal.SIGTERM, None)
            for w in workers:
                w.wait(30)
            if worker.returncode != 2:  # 2: the worker said why, in one line
                print(f"authd: worker {index} did not start (exit status "
                      f"{worker.returncode})", file=sys.stderr)
            return 2
    log.info("authd serving with %d processes on port %d", n, port)
    print(f"authd listening on port {port}", flush=True)
    codes = [w.wait() for w in workers]
    return max(codes, default=0)
