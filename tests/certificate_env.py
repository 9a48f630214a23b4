"""A CA of the tests' own: the CA simulator on HTTP, ``openssl ocsp`` on its own port, a clock
the test moves, and the ``[certificate]`` settings that point a test server at it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulators.certificate.authority import CertificateAuthority
from simulators.certificate.ocsp import OcspResponder, free_port
from simulators.certificate.server import CaServer


class MovableClock:
    """Real time, or a fixed moment the test sets; both authd and the CA read it."""

    def __init__(self) -> None:
        self.fixed: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)

    def set(self, moment: dt.datetime) -> None:
        self.fixed = moment.astimezone(dt.UTC)


class CaEnv:
    def __init__(self, root: Path, clock: MovableClock, ocsp_minutes: int = 60) -> None:
        self.root = root
        self.clock = clock
        self.ocsp_port = free_port()
        self.ca = CertificateAuthority(root / "ca", clock=clock,
                                       ocsp_url=f"http://127.0.0.1:{self.ocsp_port}/")
        self.server = CaServer(self.ca)
        self.ca.crl_url = self.server.crl_url
        self.ocsp_minutes = ocsp_minutes
        self.responder: OcspResponder | None = None

    def start_ocsp(self, fake_time: str = "") -> OcspResponder:
        self.stop_ocsp()
        self.responder = OcspResponder(self.ca, self.ocsp_port,
                                       next_update_minutes=self.ocsp_minutes,
                                       fake_time=fake_time).start()
        return self.responder

    def stop_ocsp(self) -> None:
        if self.responder is not None:
            self.responder.stop()
            self.responder = None

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"ca_url": self.server.url, "ca_certificates": str(self.ca.ca_pem), **extra}


@contextmanager
def ca_env(root: Path, *, ocsp: bool = True, ocsp_minutes: int = 60) -> Iterator[CaEnv]:
    env = CaEnv(root, MovableClock(), ocsp_minutes)
    env.server.start()
    try:
        if ocsp:
            env.start_ocsp()
        yield env
    finally:
        env.stop_ocsp()
        env.server.stop()
