"""authd server processes for tests and benchmarks: ``authd serve`` as a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc

from authd.client import dev_channel
from authd.demo_steps.topology import listening_port


def serve_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The environment of an ``authd serve`` child: this one, quieter, simulators on, then
    ``env`` (a None value removes the variable)."""
    out = {**os.environ, "AUTHD_LOG_LEVEL": "WARNING", "AUTHD_SIMULATORS": "true"}
    for name, value in (env or {}).items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


class Node:
    """One ``authd serve --insecure`` process (mTLS with ``insecure=False``) on a free loopback
    port, simulators on (``env`` may say ``AUTHD_SIMULATORS=false``)."""

    def __init__(self, data_dir: Path, store_url: str,
                 env: Mapping[str, str | None] | None = None, timeout: float = 30.0,
                 insecure: bool = True) -> None:
        self.data_dir = data_dir
        self.store_url = store_url
        cmd = [sys.executable, "-m", "authd.cli", "serve", *(["--insecure"] if insecure else []),
               "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "--store", store_url]
        full_env = serve_env(env)
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        self.port = self._read_port(timeout)
        self.address = f"127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        port = listening_port(self.proc, timeout)
        if port is None:
            self.kill()
            raise RuntimeError(f"authd node did not start; see {self.log.name}")
        return port

    def serving_fields(self) -> dict[str, Any]:
        """The fields of the node's "authd serving" log line (written before it says its port;
        logged with ``AUTHD_LOG_LEVEL`` INFO): e.g. ``metrics``, where its metrics endpoint
        listens, a port 0 of ``[server] metrics_listen`` read back."""
        for line in Path(self.log.name).read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("msg") == "authd serving":
                    return dict(entry)
        raise AssertionError(f"no 'authd serving' line in {self.log.name}")

    def front_pid(self) -> int:
        """The pid of the node's native front end (0: none)."""
        try:
            tasks = Path(f"/proc/{self.proc.pid}/task").iterdir()
            children = [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:
            return 0
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "authd-front":
                    return child
            except OSError:
                continue
        return 0

    def channel(self, institution: str, role: str, subject: str = "test") -> grpc.Channel:
        return dev_channel(self.address, institution, role, subject)

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def serve_fails(data_dir: Path, *args: str, env: Mapping[str, str | None] | None = None,
                insecure: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``authd serve`` that is expected to fail at startup: its exit status and output
    (a daemon that starts instead is killed, and the test fails on its exit status)."""
    cmd = [sys.executable, "-m", "authd.cli", "serve", "--listen", "127.0.0.1:0",
           "--data-dir", str(data_dir), *(["--insecure"] if insecure else []), *args]
    try:
        return subprocess.run(cmd, env=serve_env(env), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return subprocess.CompletedProcess(cmd, -9, out, err)


def startup_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed start (``authd: ...``); asserts exit status 2 and no
    traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("authd: ")]
    assert len(lines) == 1, proc.stderr[-2000:]
    return lines[0]

