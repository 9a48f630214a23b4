"""A braille embosser on a loopback raw port (9100 style) that keeps what it embossed.

It takes one job per connection (the client half-closes when the job is sent),
answers with a PJL status block, and can be told to fail: ``offline`` stops
listening (connections are refused), ``paper_jam`` / ``paper_out`` take the job
but emboss nothing and answer the fault code.

What it embossed (a card's codes) is read in process only (``jobs``, ``last_job``): nothing
that comes over its port is ever answered with a job, so a local client cannot read a card.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum, unique
from typing import Self

from drivers.embosser.status import (
    CODE_PAPER_JAM,
    CODE_PAPER_OUT,
    CODE_READY,
    DeviceStatus,
)

UEL = b"\x1b%-12345X"
MAX_JOB_BYTES = 4 * 1024 * 1024
READ_TIMEOUT = 5.0


@unique
class Fault(IntEnum):
    NONE = 0
    OFFLINE = 1
    PAPER_JAM = 2
    PAPER_OUT = 3


@dataclass(frozen=True)
class EmbossedJob:
    number: int
    data: bytes = field(repr=False)
    received_at: float
    pages: int


class EmbosserSimulator:
    """``with EmbosserSimulator() as sim: sim.address -> "socket://127.0.0.1:PORT"``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._jobs: list[EmbossedJob] = []
        self._fault = Fault.NONE
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._job_event = threading.Condition(self._lock)
        self._requested_port = port
        self.port = 0
        self.refused_jobs = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        self._listen(self._requested_port)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._close_listener()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"socket://{self.host}:{self.port}"

    # -- faults ---------------------------------------------------------------------------
    def set_fault(self, fault: Fault) -> None:
        """Switch a fault on (``Fault.NONE`` clears it).  Offline stops listening."""
        with self._lock:
            previous = self._fault
            self._fault = fault
        if fault is Fault.OFFLINE and previous is not Fault.OFFLINE:
            self._close_listener()
        elif fault is not Fault.OFFLINE and previous is Fault.OFFLINE:
            self._listen(self.port)

    @property
    def fault(self) -> Fault:
        with self._lock:
            return self._fault

    # -- what was embossed ----------------------------------------------------------------
    @property
    def jobs(self) -> list[EmbossedJob]:
        with self._lock:
            return list(self._jobs)

    def last_job(self) -> EmbossedJob:
        with self._lock:
            if not self._jobs:
                raise LookupError("nothing embossed yet")
            return self._jobs[-1]

    def wait_for_jobs(self, count: int, timeout: float = 5.0) -> list[EmbossedJob]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._jobs) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._jobs)} jobs embossed, expected {count}")
                self._job_event.wait(left)
            return list(self._jobs)

    def tamper(self, index: int, data: bytes) -> None:
        """Replace what job ``index`` left on paper (a damaged or misprinted sheet)."""
        with self._lock:
            job = self._jobs[index]
            self._jobs[index] = EmbossedJob(job.number, data, job.received_at, job.pages)

    # -- the device -----------------------------------------------------------------------
    def _listen(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(16)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._stopping.clear()
        thread = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                  name=f"embosser-sim-{self.port}")
        self._thread = thread
        thread.start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(READ_TIMEOUT)
            data = bytearray()
            try:
                while len(data) <= MAX_JOB_BYTES:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                return
            reply = self._process(bytes(data))
            try:
                conn.sendall(reply)
            except OSError:
                pass

    def _process(self, data: bytes) -> bytes:
        fault = self.fault
        if data.startswith(UEL) and b"@PJL INFO STATUS" in data:
            return self._status(fault).to_bytes("INFO")
        if fault in (Fault.PAPER_JAM, Fault.PAPER_OUT):
            with self._lock:
                self.refused_jobs += 1
            return self._status(fault).to_bytes()
        pages = data.count(b"\f") or (1 if data else 0)
        with self._lock:
            job = EmbossedJob(len(self._jobs) + 1, data, time.time(), pages)
            self._jobs.append(job)
            self._job_event.notify_all()
        return DeviceStatus(CODE_READY, "Ready", True, pages).to_bytes()

    @staticmethod
    def _status(fault: Fault) -> DeviceStatus:
        if fault is Fault.PAPER_JAM:
            return DeviceStatus(CODE_PAPER_JAM, "Paper jam", True)
        if fault is Fault.PAPER_OUT:
            return DeviceStatus(CODE_PAPER_OUT, "Paper out", True)
        return DeviceStatus(CODE_READY, "Ready", True)
