"""A CA of the tests' own: the CA simulator on HTTP, ``openssl ocsp`` on its own port, a clock
the test moves, and the ``[certificate]`` settings that point a test server at it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authd.certificate.feature import CertificateFeature
from authd.v1 import certificate_pb2 as cpb
from authd.v1 import certificate_pb2_grpc, otp_pb2_grpc, token_pb2_grpc
from authd.v1 import otp_pb2 as opb
from simulators.certificate.authority import CertificateAuthority
from simulators.certificate.ocsp import OcspResponder, free_port, start_responder
from simulators.certificate.server import CaServer
from simulators.otp.generator import DisplayToken
from tests.conftest import wait_for


class MovableClock:
    """Real time, or a fixed moment the test sets; both authd and the CA read it."""

    def __init__(self) -> None:
        self.fixed: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)

    def set(self, moment: dt.datetime) -> None:
        self.fixed = moment.astimezone(dt.UTC)


def use_clock(srv: Any, clock: MovableClock) -> None:
    """``srv``'s certificate rules read ``clock`` from now on. Set once the feature's first
    housekeeping round (started with the server, on real time) has ended: a round still in
    progress would expire a request opened meanwhile at an earlier fixed moment."""
    feature = srv.app.feature(CertificateFeature)
    assert wait_for(lambda: feature.housekeeping_rounds >= 1, 30), "no housekeeping round"
    feature.set_clock(clock)


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
        self.responder = start_responder(self.ca, self.ocsp_port,
                                         next_update_minutes=self.ocsp_minutes,
                                         fake_time=fake_time)
        self.ocsp_port = self.responder.port
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


class Teller:
    """A teller of bank-a: the certificate and token services, and the customer's OTP device
    (HOTP, enrolled at bank-a) answering step 3 through authd's OTP center."""

    def __init__(self, srv: Any, institution: str = "bank-a") -> None:
        ch = srv.channel(institution, "branch", "teller-1")
        self.certs = certificate_pb2_grpc.CertificateServiceStub(ch)
        self.tokens = token_pb2_grpc.TokenServiceStub(ch)
        self.backend = certificate_pb2_grpc.CertificateServiceStub(
            srv.channel(institution, "backend", "ib-1"))
        otp = otp_pb2_grpc.OtpServiceStub(ch)
        serial = f"OTP-{uuid.uuid4().hex[:8]}"
        resp = otp.Enroll(opb.EnrollRequest(serial=serial, operator_id="kim", customer_id="C-1001",
                                            parameters=opb.OtpParameters(kind=opb.OTP_KIND_HOTP)))
        self.otp = DisplayToken.from_uri(resp.provisioning_uri, serial)

    def open(self, customer: str = "C-1001", kind: str = "banking", **more: Any) -> str:
        req = self.certs.OpenIssuance(cpb.OpenIssuanceRequest(
            customer_ref=customer, certificate_type=kind, subscriber_name="Hong Gildong",
            operator="kim", **more))
        return str(req.id)

    def steps(self, request_id: str) -> cpb.IssuanceRequest:
        """Steps 2-4: identity, the OTP code, the account."""
        self.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
            request_id=request_id, step=cpb.ISSUANCE_STEP_IDENTITY, operator="kim",
            identity_document="resident registration card"))
        self.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
            request_id=request_id, step=cpb.ISSUANCE_STEP_SECURITY_MEANS, operator="kim",
            otp_serial=self.otp.serial, otp_code=self.otp.press()))
        return self.certs.AdvanceIssuance(cpb.AdvanceIssuanceRequest(
            request_id=request_id, step=cpb.ISSUANCE_STEP_ACCOUNT, operator="kim",
            account="110-123-456789"))

    def issue(self, storage: dict[str, Any], customer: str = "C-1001",
              kind: str = "banking") -> cpb.Certificate:
        request_id = self.open(customer, kind)
        self.steps(request_id)
        return self.certs.CompleteIssuance(cpb.CompleteIssuanceRequest(request_id=request_id,
                                                                       **storage))
