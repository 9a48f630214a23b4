"""A split deployment on one machine: center nodes and branch nodes as ``authd serve``
processes, each with its configuration file, and a development PKI that gives every branch
node its own certificate (O = institution, OU = branch, CN = terminal). For the demo
(``python -m authd.demo --split``), the system test and the benchmark.

Center nodes serve mTLS and share one store; a branch node serves its terminal (mTLS as well,
or the insecure development mode for tests) and reaches the center through ``[center] urls``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from authd import pki
from authd.context import Role


def terminal_name(institution: str, n: int = 1) -> str:
    """The CN of a branch node's certificate: the terminal it runs on."""
    return f"{institution}-branch-{n:02d}"


def create_pki(directory: Path, institutions: Sequence[str]) -> Path:
    """CA, the server certificate (localhost, 127.0.0.1), and for each institution a branch
    node, a teller and a backend; plus an operations admin."""
    clients = [pki.ClientSpec(terminal_name(i), i, Role.BRANCH) for i in institutions]
    clients += [pki.ClientSpec(f"{i}-teller", i, Role.BRANCH) for i in institutions]
    clients += [pki.ClientSpec(f"{i}-backend", i, Role.BACKEND) for i in institutions]
    clients.append(pki.ClientSpec("ops", "authd-ops", Role.ADMIN))
    return pki.create_dev_pki(directory, clients)


def server_tls(pki_dir: Path) -> dict[str, str]:
    """``[server]`` keys of a node serving mTLS with the development PKI."""
    return {"tls_cert": str(pki_dir / "server.pem"), "tls_key": str(pki_dir / "server.key"),
            "client_ca": str(pki_dir / "ca.pem")}


def center_config(pki_dir: Path, **sections: Mapping[str, Any]) -> dict[str, Any]:
    """A center node: the center role, mTLS, no printer or embosser of its own."""
    raw: dict[str, Any] = {
        "roles": ["center"],
        "server": {**server_tls(pki_dir), "grace_seconds": 2.0},
        "security_card": {"embosser": "", "printer": ""},
    }
    return _merge(raw, sections)


def branch_config(pki_dir: Path, institution: str, center_urls: Sequence[str],
                  **sections: Mapping[str, Any]) -> dict[str, Any]:
    """``institution``'s branch node: the branch role, its (simulated) devices, its link to the
    center."""
    name = terminal_name(institution)
    raw: dict[str, Any] = {
        "roles": ["branch"],
        "simulators": True,  # the demo's, tests' and benchmarks' devices are simulated
        "server": {**server_tls(pki_dir), "grace_seconds": 2.0},
        "center": {"urls": list(center_urls), "tls_cert": str(pki_dir / f"{name}.pem"),
                   "tls_key": str(pki_dir / f"{name}.key"), "ca": str(pki_dir / "ca.pem")},
        "hid_otp": {"monitor_interval": 0},
    }
    return _merge(raw, sections)


def _merge(base: dict[str, Any], more: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    for section, values in more.items():
        if isinstance(values, Mapping):
            base[section] = {**base.get(section, {}), **values}
        else:
            base[section] = values
    return base


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(raw: Mapping[str, Any]) -> str:
    """Top-level keys and one level of tables, as these configurations have."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in raw.items() if not isinstance(v, Mapping)]
    for section, values in raw.items():
        if isinstance(values, Mapping):
            lines.append(f"\n[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def listening_port(proc: subprocess.Popen[str], timeout: float) -> int | None:
    """The port an ``authd serve`` started with its stdout piped says it listens on; None
    when it exits first or says nothing within ``timeout``."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("authd listening on port "):
            return int(line.rsplit(" ", 1)[1])
        if not line and proc.poll() is not None:
            break
    return None


class ServeProcess:
    """``authd serve --config FILE`` as an operator runs it, on a free loopback port."""

    def __init__(self, name: str, data_dir: Path, raw: Mapping[str, Any], *,
                 store_url: str = "", env: Mapping[str, str] | None = None,
                 drop_env: Sequence[str] = (), timeout: float = 60.0) -> None:
        """``env``: variables added to this process's environment; ``drop_env``: variables
        the node must not inherit."""
        self.name = name
        self.data_dir = data_dir
        if not data_dir.exists():
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            data_dir.mkdir(mode=0o700)
            os.chmod(data_dir, 0o700)  # the node keeps its store and keys here
        config = {"data_dir": str(data_dir), **raw}
        server = {"listen": "127.0.0.1:0", **config.get("server", {})}
        config["server"] = server
        if store_url:
            config["store"] = {**config.get("store", {}), "url": store_url}
        self.config_path = data_dir / "authd.toml"
        self.config_path.write_text(to_toml(config))
        self.log_path = data_dir / "authd.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        full_env = {**{k: v for k, v in os.environ.items() if k not in drop_env},
                    "AUTHD_LOG_LEVEL": "WARNING", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authd.cli", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE, stderr=self._log, text=True, env=full_env)
        self.port = self._read_port(timeout)
        self.address = f"127.0.0.1:{self.port}"

    def _read_port(self, timeout: float) -> int:
        port = listening_port(self.proc, timeout)
        if port is None:
            self.kill()
            raise RuntimeError(f"authd node {self.name} did not start; see {self.log_path}")
        return port

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: in-flight calls finish first."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: the node dies at whatever step it is in."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
