"""Ways to hand a job to an embosser or printer.

- ``socket://HOST:PORT``: a raw TCP port (AppSocket / JetDirect, port 9100); the
  device's PJL status after the job, if it sends one, is read and checked.
- ``file:///dev/usb/lp0``: a device file that already exists (never created).
- ``dir:///path``: a spool directory; each job is a new file readable only by its owner.
- ``lp://QUEUE``: a CUPS/LPD print queue through the ``lp`` command, raw mode.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum, unique
from urllib.parse import unquote, urlsplit

from drivers.embosser.errors import BadJob, EmbosserFault, EmbosserOffline
from drivers.embosser.status import (
    STATUS_QUERY,
    DeviceStatus,
    parse_status,
    raise_for_status,
)
from drivers.errors import DeviceTimeout

DEFAULT_RAW_PORT = 9100
DEFAULT_TIMEOUT = 10.0
MAX_STATUS_BYTES = 4096
MAX_JOB_BYTES = 4 * 1024 * 1024
_JOB_NAME_RE = re.compile(r"[^A-Za-z0-9._-]")


@unique
class JobState(IntEnum):
    COMPLETED = 1  # the device reported the job done
    SENT = 2  # delivered; the device gives no status on this path
    QUEUED = 3  # accepted by a print queue


@dataclass(frozen=True)
class JobResult:
    job_id: str
    state: JobState
    bytes_sent: int
    pages: int = 0
    device_status: str = ""


class Transport(ABC):
    """One way to deliver job bytes to a device."""

    target: str

    @abstractmethod
    def submit(self, job_name: str, data: bytes) -> JobResult: ...

    def status(self) -> DeviceStatus | None:
        """The device's current status where the path can ask for it."""
        return None


class SocketTransport(Transport):
    def __init__(self, host: str, port: int = DEFAULT_RAW_PORT, timeout: float = DEFAULT_TIMEOUT):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.target = f"socket://{host}:{port}"

    def _connect(self) -> socket.socket:
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout)
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise EmbosserOffline(f"embosser at {self.target} is offline") from exc
        except TimeoutError as exc:
            raise EmbosserOffline(f"embosser at {self.target} does not answer") from exc
        except OSError as exc:
            raise EmbosserOffline(
                f"embosser at {self.target} is unreachable ({exc.strerror})"
            ) from exc

    def _exchange(self, payload: bytes) -> bytes:
        with self._connect() as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                reply = bytearray()
                while len(reply) < MAX_STATUS_BYTES:
                    chunk = sock.recv(MAX_STATUS_BYTES - len(reply))
                    if not chunk:
                        break
                    reply += chunk
            except TimeoutError as exc:
                raise DeviceTimeout(f"embosser at {self.target} timed out") from exc
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise EmbosserOffline(f"embosser at {self.target} dropped the connection") from exc
        return bytes(reply)

    def submit(self, job_name: str, data: bytes) -> JobResult:
        reply = self._exchange(data)
        status = parse_status(reply)
        if status is None:
            return JobResult(job_name, JobState.SENT, len(data))
        raise_for_status(status)
        return JobResult(job_name, JobState.COMPLETED, len(data), status.pages, status.display)

    def status(self) -> DeviceStatus | None:
        return parse_status(self._exchange(STATUS_QUERY))


class DeviceFileTransport(Transport):
    def __init__(self, path: str):
        self.path = path
        self.target = f"file://{path}"

    def submit(self, job_name: str, data: bytes) -> JobResult:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise EmbosserOffline(f"device {self.path} is not present") from exc
        except OSError as exc:
            raise EmbosserOffline(f"device {self.path} cannot be opened ({exc.strerror})") from exc
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise EmbosserFault(f"device {self.path} is full") from exc
            raise EmbosserOffline(f"writing to {self.path} failed ({exc.strerror})") from exc
        finally:
            os.close(fd)
        return JobResult(job_name, JobState.SENT, len(data))


class DirectoryTransport(Transport):
    def __init__(self, path: str):
        self.path = path
        self.target = f"dir://{path}"

    def submit(self, job_name: str, data: bytes) -> JobResult:
        if not os.path.isdir(self.path):
            raise EmbosserOffline(f"spool directory {self.path} does not exist")
        safe = _JOB_NAME_RE.sub("_", job_name)[:64] or "job"
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{safe}-{os.urandom(4).hex()}.job"
        full = os.path.join(self.path, name)
        tmp = full + ".part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, full)
        except OSError as exc:
            raise EmbosserFault(f"spooling to {self.path} failed ({exc.strerror})") from exc
        return JobResult(name, JobState.QUEUED, len(data))


class LpTransport(Transport):
    """A print queue through ``lp -d QUEUE -o raw``."""

    _REQUEST_RE = re.compile(r"request id is (\S+)")

    def __init__(self, queue: str, timeout: float = DEFAULT_TIMEOUT, command: str = "lp"):
        self.queue = queue
        self.timeout = timeout
        self.command = command
        self.target = f"lp://{queue}"

    def submit(self, job_name: str, data: bytes) -> JobResult:
        exe = shutil.which(self.command)
        if exe is None:
            raise EmbosserOffline(
                f"print queue {self.queue}: the '{self.command}' command is not installed"
            )
        title = _JOB_NAME_RE.sub("_", job_name)[:64] or "job"
        try:
            done = subprocess.run(
                [exe, "-d", self.queue, "-o", "raw", "-t", title],
                input=data,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DeviceTimeout(f"print queue {self.queue} did not take the job in time") from exc
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            why = message[-1] if message else f"exit status {done.returncode}"
            raise EmbosserOffline(f"print queue {self.queue} refused the job: {why}")
        match = self._REQUEST_RE.search(done.stdout.decode("utf-8", "replace"))
        return JobResult(match.group(1) if match else title, JobState.QUEUED, len(data))


def open_transport(url: str, timeout: float = DEFAULT_TIMEOUT) -> Transport:
    """A transport for ``socket://host:port``, ``file:///dev/...``, ``dir:///...`` or ``lp://queue``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "socket":
        if not parts.hostname:
            raise BadJob(f"embosser address {url!r} has no host")
        return SocketTransport(parts.hostname, parts.port or DEFAULT_RAW_PORT, timeout)
    if scheme == "file":
        return DeviceFileTransport(unquote(parts.path))
    if scheme == "dir":
        return DirectoryTransport(unquote(parts.path))
    if scheme == "lp":
        queue = parts.netloc or parts.path.lstrip("/")
        if not queue:
            raise BadJob(f"print queue address {url!r} has no queue name")
        return LpTransport(queue, timeout)
    raise BadJob(f"unknown embosser address {url!r} (socket://, file://, dir:// or lp://)")


def check_size(data: bytes) -> None:
    if not data:
        raise BadJob("empty job")
    if len(data) > MAX_JOB_BYTES:
        raise BadJob("job too large")
