"""OpenSSL's OCSP responder (``openssl ocsp -index``) serving a CA's index, as a child process.

``openssl ocsp`` is a real RFC 6960 responder: it reads the CA's ``index.txt`` (reloading it when
the file changes), signs its answers with the CA's delegated OCSP certificate and states
nextUpdate ``-nmin`` minutes ahead. ``faketime`` (libfaketime) may run it at another time, so
its thisUpdate/nextUpdate match a test's clock.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from simulators.certificate.authority import CertificateAuthority

READY = "waiting for OCSP client connections"


IN_USE = "Address already in use"


def free_port() -> int:
    """A loopback port free now: released again before the responder binds it, so another
    process may take it first (``start`` then raises PortTaken)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(RuntimeError):
    """Another process took the responder's port before it could bind it."""


class OcspResponder:
    """``with OcspResponder(ca, port) as r: ...``; ``r.url`` goes into the certificates' AIA."""

    def __init__(self, ca: CertificateAuthority, port: int = 0, *, next_update_minutes: int = 60,
                 fake_time: str = "") -> None:
        if shutil.which("openssl") is None:
            raise RuntimeError("openssl is not installed")
        self.ca = ca
        self.port = port or free_port()
        self.next_update_minutes = next_update_minutes
        self.fake_time = fake_time  # e.g. "@2027-03-01 00:00:00" (UTC), run under faketime
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ca.root / f"ocsp-{self.port}.log"
        self._log_start = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        root = self.ca.root
        cmd = ["openssl", "ocsp", "-index", str(root / "index.txt"), "-CA", str(root / "ca.pem"),
               "-rsigner", str(root / "ocsp.pem"), "-rkey", str(root / "ocsp.key"),
               "-port", str(self.port), "-nmin", str(self.next_update_minutes),
               "-ignore_err"]
        if self.fake_time:
            if shutil.which("faketime") is None:
                raise RuntimeError("faketime (libfaketime) is not installed")
            cmd = ["faketime", "-f", self.fake_time, *cmd]
        return cmd

    def kick(self) -> None:
        """Make the responder reload a changed index now. ``openssl ocsp`` looks at the index
        only between two requests, before it waits for the next one, so the first request
        after a change would still get the old answer: one request of our own moves it on."""
        if self.proc is None or self.proc.poll() is not None:
            return
        request = (ocsp.OCSPRequestBuilder()
                   .add_certificate(self.ca.ocsp_certificate, self.ca.certificate, hashes.SHA1())
                   .build().public_bytes(serialization.Encoding.DER))
        post = urllib.request.Request(self.url, data=request, method="POST",
                                      headers={"Content-Type": "application/ocsp-request"})
        try:
            with urllib.request.urlopen(post, timeout=5) as answer:
                answer.read()
        except OSError:
            pass

    def start(self, timeout: float = 15.0) -> OcspResponder:
        env = {"PATH": "/usr/bin:/bin", "TZ": "UTC"}
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            # A session of its own: under faketime the responder is faketime's child, and
            # stopping must end both.
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log, env=env,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        # Readiness from its log: a bare connect-and-close probe makes openssl 3.0's
        # responder loop on that connection and never answer again.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = self.log.read_text(errors="replace")[self._log_start:]
                self.proc = None
                if IN_USE in said:
                    raise PortTaken(f"port {self.port} is taken: {said[-400:]}")
                raise RuntimeError(f"openssl ocsp exited: {said[-400:]}")
            if READY in self.log.read_text(errors="replace")[self._log_start:]:
                self.ca.index_listeners.append(self.kick)
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("openssl ocsp did not start listening")

    def stop(self) -> None:
        if self.kick in self.ca.index_listeners:
            self.ca.index_listeners.remove(self.kick)
        if self.proc is not None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
            self._signal_group(signal.SIGKILL)  # whatever of the group outlived its leader
        self.proc = None

    def _signal_group(self, signum: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> OcspResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_responder(ca: CertificateAuthority, port: int, attempts: int = 5,
                    **options: Any) -> OcspResponder:
    """The responder started on ``port`` (``options``: OcspResponder's). ``openssl ocsp``
    binds the port itself; when another process took it first and the CA issued nothing that
    names it yet, on a fresh port, which the CA's ``ocsp_url`` follows."""
    for attempt in range(attempts):
        try:
            return OcspResponder(ca, port, **options).start()
        except PortTaken:
            if ca.issued or attempt == attempts - 1:
                raise
            port = free_port()
            ca.ocsp_url = f"http://127.0.0.1:{port}/"
    raise AssertionError("attempts must be at least 1")
