"""Demo step: a certificate issued onto the customer's HSM token, a login signed with it,
the certificate revoked at the CA, and the next login signature refused with the reason.

The CA is the CA simulator in a process of its own (its RA protocol and CRL over HTTP, OpenSSL's
``openssl ocsp`` answering for its index); the daemon was started pointing at it.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

from authd.errors import details_of
from authd.v1 import certificate_pb2 as cpb
from authd.v1 import certificate_pb2_grpc, otp_pb2_grpc, token_pb2_grpc
from authd.v1 import otp_pb2 as opb
from authd.v1 import policy_pb2 as ppb
from authd.v1 import token_pb2 as tpb
from simulators.otp.generator import DisplayToken
from simulators.token.softhsm import SoftHsmEnvironment

CUSTOMER_PIN = "135790"


class CaProcess:
    """``python -m simulators.certificate`` in the background; its URLs from its first line."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "simulators.certificate", "--dir",
                                      str(root), "--ocsp-minutes", "1"],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the CA simulator did not start")
        self.info: dict[str, str] = json.loads(line)

    def _post(self, path: str, body: dict[str, object]) -> dict[str, str]:
        import urllib.request

        req = urllib.request.Request(f"{self.info['ca_url']}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            value: dict[str, str] = json.loads(answer.read())
            return value

    def issue(self, csr_der: bytes, name: str = "Hong Gildong") -> bytes:
        """What an RA does in two calls: register the applicant, enroll the key."""
        import base64

        app = self._post("/ra/applications", {"subscriber": {"name": name, "ra": "bank-a"},
                                              "certificate_type": "banking"})
        answer = self._post("/enroll", {"reference": app["reference"], "code": app["code"],
                                        "csr": base64.b64encode(csr_der).decode()})
        return base64.b64decode(answer["certificate"])

    def revoke(self, serial: str, reason: str = "keyCompromise") -> None:
        import urllib.request

        body = json.dumps({"reason": reason}).encode()
        req = urllib.request.Request(f"{self.info['ca_url']}/certificates/{serial}/revoke",
                                     data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            answer.read()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)


@dataclass
class CertificateDemoContext:
    branch_channel: grpc.Channel
    backend_channel: grpc.Channel
    softhsm: SoftHsmEnvironment
    ca: CaProcess
    say: Callable[[str], None] = print
    customer_ref: str = "C-1001"


def run(ctx: CertificateDemoContext) -> None:
    say = ctx.say
    certs = certificate_pb2_grpc.CertificateServiceStub(ctx.branch_channel)
    tokens = token_pb2_grpc.TokenServiceStub(ctx.branch_channel)
    backend = certificate_pb2_grpc.CertificateServiceStub(ctx.backend_channel)
    otp = otp_pb2_grpc.OtpServiceStub(ctx.branch_channel)
    serial = f"OTP-{uuid.uuid4().hex[:8]}"
    device = DisplayToken.from_uri(otp.Enroll(opb.EnrollRequest(
        serial=serial, operator_id="teller-kim", customer_id=ctx.customer_ref,
        parameters=opb.OtpParameters(kind=opb.OTP_KIND_HOTP))).provisioning_uri, serial)
    token = ctx.softhsm.init_token(f"cert-{secrets.token_hex(3)}", CUSTOMER_PIN)
    say(f"The customer brings a blank security token ({token.serial}) and an OTP ({serial}).")
    deadline = time.monotonic() + 15
    while not any(t.serial == token.serial for t in tokens.ListTokens(
            tpb.ListTokensRequest()).tokens) and time.monotonic() < deadline:
        time.sleep(0.2)  # the daemon rescans SoftHSM2's token directory
    session = tokens.Login(tpb.TokenLoginRequest(token_serial=token.serial,
                                                 pin=CUSTOMER_PIN)).session

    req = certs.OpenIssuance(cpb.OpenIssuanceRequest(
        customer_ref=ctx.customer_ref, certificate_type="banking",
        subscriber_name="Hong Gildong", operator="teller-kim",
        device_info=ppb.DeviceInfo(ip="198.51.100.20")))
    say(f"  1 type: banking (free); the application is registered at the CA; request "
        f"{req.id[:8]} must be completed within 7 days")
    step = cpb.AdvanceIssuanceRequest
    certs.AdvanceIssuance(step(request_id=req.id, step=cpb.ISSUANCE_STEP_IDENTITY,
                               operator="teller-kim", identity_document="resident card"))
    certs.AdvanceIssuance(step(request_id=req.id, step=cpb.ISSUANCE_STEP_SECURITY_MEANS,
                               operator="teller-kim", otp_serial=serial,
                               otp_code=device.press()))
    certs.AdvanceIssuance(step(request_id=req.id, step=cpb.ISSUANCE_STEP_ACCOUNT,
                               operator="teller-kim", account="110-123-456789"))
    say("  2-4 identity checked, OTP code accepted by authd's OTP center, account entered")
    cert = certs.CompleteIssuance(cpb.CompleteIssuanceRequest(
        request_id=req.id, token=cpb.TokenStorage(session=session)))
    say(f"  5 key generated on the token, CSR signed by it; certificate {cert.serial} issued "
        f"by {cert.issuer}, stored next to its key, renewable {cert.renewable_from[:10]} .. "
        f"{cert.renewable_until}")

    key_id = next(c.key_id for c in tokens.ListObjects(
        tpb.TokenListObjectsRequest(session=session)).certificates
        if c.serial_hex.lower().lstrip("0") == cert.serial)
    challenge = secrets.token_bytes(32)
    signed = tokens.Sign(tpb.TokenSignRequest(session=session, key_id=key_id, data=challenge))
    check = backend.VerifyCertificateSignature(cpb.VerifyCertificateSignatureRequest(
        certificate=cert.der, signature=signed.signature, data=challenge))
    say(f"  The login challenge is signed on the token; the backend accepts it: "
        f"{check.accepted} (status from {check.check.source})")

    ctx.ca.revoke(cert.serial)
    say("  The customer reports the key leaked to the CA; the CA revokes the certificate.")
    # authd relies on a responder's answer until its nextUpdate, at most cache_max_seconds
    # (the demo's daemon: 2 s, so the revocation is seen at once)
    time.sleep(2.5)
    try:
        tokens.Sign(tpb.TokenSignRequest(session=session, key_id=key_id, data=challenge))
        raise AssertionError("a revoked certificate's key signed")
    except grpc.RpcError as refused:
        say(f"  The next login signature is refused: {refused.code().name} "
            f"{details_of(refused).reason}: {refused.details()}")
    parsed = x509.load_der_x509_certificate(cert.der)
    say(f"  (serial {parsed.serial_number:x}; reissue it with additional authentication)")
    tokens.Logout(tpb.TokenLogoutRequest(session=session))
