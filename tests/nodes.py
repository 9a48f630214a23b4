"""authd server processes for tests and benchmarks: ``authd serve`` as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import grpc

from authd.client import dev_channel


class Node:
    """One ``authd serve`` process on a free loopback port: ``--insecure`` (the caller from
    metadata) unless ``insecure`` is false, when ``config`` says how it serves mTLS."""

    def __init__(self, data_dir: Path, store_url: str, env: Mapping[str, str] | None = None,
                 timeout: float = 30.0, *, config: Path | None = None,
                 insecure: bool = True) -> None:
        self.data_dir = data_dir
        self.store_url = store_url
        cmd = [sys.executable, "-m", "authd.cli", "serve",
               "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", store_url]
        if insecure:
            cmd.append("--insecure")
        if config is not None:
            cmd += ["--config", str(config)]
        full_env = {**os.environ, "AUTHD_LOG_LEVEL": "WARNING", **(env or {})}
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.port = self._read_port(timeout)
        self.address = f"127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("authd listening on port "):
                return int(line.rsplit(" ", 1)[1])
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        raise RuntimeError(f"authd node did not start; see {self.log.name}")

    def channel(self, institution: str, role: str, subject: str = "test") -> grpc.Channel:
        return dev_channel(self.address, institution, role, subject)

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        """SIGKILL: the process dies at whatever step it is in."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None
