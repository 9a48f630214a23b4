"""A pcscd of our own: its own client socket, its own reader configuration, its own vpcd ports.

pcsc-lite compiles its socket path in (`/run/pcscd/pcscd.comm`): clients honour the
`PCSCLITE_CSOCK_NAME` environment variable, but pcscd itself (1.9 and 2.x) only listens
elsewhere when it is socket-activated (systemd's protocol: the listening socket on fd 3,
`LISTEN_FDS=1`, `LISTEN_PID` its own pid). So this module binds the socket at a path of its
own and hands it to `pcscd -f -c <reader.conf.d of its own>`, whose one vpcd entry gives the
two virtual readers a pair of free TCP ports instead of the fixed 35963/35964. Any number of
these run beside each other and beside a system pcscd without touching one another's readers.

Every client that should reach it needs `environment` (pyscard in this process via
`activate()`, subprocesses by inheriting `os.environ` or an explicit env).

Readiness is read from /proc (pcscd's own process holds a listening socket on both ports),
never by connecting to a vpcd port: vpcd takes any connection as a card insertion.

The one file pcscd still writes outside its directory is its pid file
(`/run/pcscd/pcscd.pid`, compiled in); pcsc-lite only reads it when a pcscd that is *not*
socket-activated starts, or for `pcscd --hotplug`.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

SOCKET_VARIABLE = "PCSCLITE_CSOCK_NAME"
READER_NAMES = ("Virtual PCD 00 00", "Virtual PCD 00 01")
VPCD_DRIVER_CANDIDATES = (
    "/usr/lib/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/lib64/pcsc/drivers/serial/libifdvpcd.so",
    "/usr/local/lib/pcsc/drivers/serial/libifdvpcd.so",
)
_SUN_PATH_MAX = 108  # sockaddr_un.sun_path on Linux
_TCP_LISTEN = "0A"  # st column of /proc/net/tcp
# sh keeps pcscd's pid ($$ survives exec) and moves the socket from stdin to fd 3
_ACTIVATE = 'exec 3<&0 </dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"'


class PcscdError(RuntimeError):
    """pcscd could not be started as asked (the message says why and where its log is)."""


def vpcd_driver() -> Path | None:
    for candidate in VPCD_DRIVER_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    return None


def missing_reason() -> str | None:
    """Why a private pcscd cannot run on this machine (None: it can)."""
    if shutil.which("pcscd") is None:
        return "pcscd is not installed (apt: pcscd vsmartcard-vpcd)"
    if vpcd_driver() is None:
        return "the vpcd reader driver is not installed (apt: vsmartcard-vpcd)"
    return None


class PrivatePcscd:
    """`pcscd -f` as a child, reachable only through `environment`.

    `start()` / `stop()` may be repeated (a restart keeps the socket path and the ports, so
    virtual cards go back into the same readers). `ports[i]` is reader `READER_NAMES[i]`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket_path = root / "pcscd.comm"
        self.config_dir = root / "reader.conf.d"
        self.log_path = root / "pcscd.log"
        self.ports: tuple[int, int] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        return {SOCKET_VARIABLE: str(self.socket_path)}

    def activate(self) -> None:
        """Point this process's PC/SC clients (pyscard) at this pcscd; call before first use."""
        os.environ.update(self.environment)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def readers(self) -> tuple[str, str]:
        return READER_NAMES

    def port(self, reader_index: int) -> int:
        if self.ports is None:
            raise PcscdError("pcscd has not been started yet: no vpcd ports")
        return self.ports[reader_index]

    def start(self, timeout: float = 20.0) -> None:
        if self.running:
            return
        reason = missing_reason()
        if reason:
            raise PcscdError(reason)
        if len(os.fsencode(self.socket_path)) >= _SUN_PATH_MAX:
            raise PcscdError(f"the socket path {self.socket_path} is too long for a Unix socket")
        keep_ports = self.ports is not None
        for _attempt in range(1 if keep_ports else 5):
            if not keep_ports:
                self.ports = _free_port_pair()
            try:
                self._launch(timeout)
                return
            except _PortTaken:
                self.stop()
        raise PcscdError(
            f"vpcd could not listen on ports {self.ports} (taken by another process);"
            f" see {self.log_path}"
        )

    def _launch(self, timeout: float) -> None:
        assert self.ports is not None
        driver = vpcd_driver()
        assert driver is not None
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)
        (self.config_dir / "vpcd").write_text(
            f'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:{self.ports[0]}\n"
            f"LIBPATH      {driver}\n"
            f"CHANNELID    {self.ports[0]}\n"
        )
        self.socket_path.unlink(missing_ok=True)
        log_start = len(self._log_text())  # the log is appended to across restarts
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.socket_path))
            os.chmod(self.socket_path, 0o666)  # as pcscd does: any local user may be a client
            listener.listen(socket.SOMAXCONN)
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    ["/bin/sh", "-c", _ACTIVATE, "pcscd", "--foreground", "--info",
                     "--config", str(self.config_dir)],
                    stdin=listener.fileno(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        finally:
            listener.close()  # pcscd holds the only copy: when it dies, clients are refused
        self._wait_ready(timeout, log_start)

    def _wait_ready(self, timeout: float, log_start: int) -> None:
        assert self.process is not None and self.ports is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PcscdError(
                    f"pcscd exited with status {self.process.returncode}: {self.log_tail()}"
                )
            if _listening(self.process.pid, self.ports):
                return
            text = self._log_text()
            if "Could not initialize connection to virtual ICC" in text[log_start:]:
                raise _PortTaken()
            if time.monotonic() > deadline:
                self.stop()
                raise PcscdError(
                    f"pcscd did not open vpcd ports {self.ports} within {timeout:.0f} s:"
                    f" {self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to our pcscd (by its pid), then wait; SIGKILL if it hangs."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.socket_path.unlink(missing_ok=True)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 5) -> str:
        """The last `lines` lines of pcscd's log (info level: cards inserted, removed, powered)."""
        tail = self._log_text().strip().splitlines()[-lines:]
        return (" | ".join(tail) or "no output") + f" (log: {self.log_path})"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class _PortTaken(Exception):
    pass


def _free_port_pair() -> tuple[int, int]:
    """Two consecutive TCP ports nobody holds (vpcd binds all addresses, so test those)."""
    for _ in range(200):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            try:
                second.bind(("", port + 1))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return port, port + 1
    raise PcscdError("found no two consecutive free TCP ports")


def _listening(pid: int, ports: tuple[int, int]) -> bool:
    """Does process `pid` hold a listening TCP socket on every one of `ports`? (/proc only)"""
    inodes: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == _TCP_LISTEN and port in ports:
                inodes[f"socket:[{fields[9]}]"] = port
    if not inodes:
        return False
    held = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in inodes:
                held.add(inodes[target])
    except FileNotFoundError:
        return False
    return held == set(ports)
