"""Certificates issued onto an HSM token (SoftHSM2), relied on before the token signs, and
revoked at the CA: OCSP (openssl ocsp), the CRL fallback, a responder that is down."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authd.certificate.feature import CertificateFeature
from authd.errors import details_of
from authd.v1 import certificate_pb2 as cpb
from authd.v1 import certificate_pb2_grpc
from authd.v1 import otp_pb2 as opb
from authd.v1 import otp_pb2_grpc
from authd.v1 import token_pb2 as tpb
from authd.v1 import token_pb2_grpc
from simulators.otp.generator import DisplayToken
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.certificate_env import CaEnv, ca_env

FAST = {"token": {"poll_interval": 0.1, "rescan_interval": 0.1}}


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[CaEnv]:
    with ca_env(tmp_path) as env:
        yield env


@pytest.fixture
def token() -> SoftHsmToken:
    return process_env().init_token(f"cert-{uuid.uuid4().hex[:8]}")


def start(server: Callable[..., Any], ca: CaEnv, store_url: str | None = None,
          **certificate: Any) -> Any:
    srv = server(store_url, certificate=ca.settings(**certificate), **FAST)
    srv.app.feature(CertificateFeature).set_clock(ca.clock)
    return srv


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
        resp = otp.Enroll(opb.EnrollRequest(serial=serial, operator_id="kim",
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


def login(tokens: token_pb2_grpc.TokenServiceStub, token: SoftHsmToken) -> str:
    return str(tokens.Login(tpb.TokenLoginRequest(token_serial=token.serial,
                                                  pin=token.pin)).session)


def key_of(tokens: token_pb2_grpc.TokenServiceStub, session: str, serial: str) -> bytes:
    listed = tokens.ListObjects(tpb.TokenListObjectsRequest(session=session))
    for cert in listed.certificates:
        if cert.serial_hex.lower().lstrip("0") == serial:
            return bytes(cert.key_id)
    raise AssertionError(f"no certificate {serial} on the token")


def sign(tokens: token_pb2_grpc.TokenServiceStub, session: str, key_id: bytes) -> bytes:
    return bytes(tokens.Sign(tpb.TokenSignRequest(session=session, key_id=key_id,
                                                  data=b"login challenge 7f3a")).signature)


def test_issue_on_token_sign_then_revoked_at_the_ca_refuses_the_next_signature(
        server: Callable[..., Any], ca: CaEnv, token: SoftHsmToken, store_url: str,
        tmp_path: Path) -> None:
    srv = start(server, ca, store_url)
    teller = Teller(srv)
    session = login(teller.tokens, token)
    cert = teller.issue({"token": cpb.TokenStorage(session=session)})
    assert cert.storage == cpb.STORAGE_LOCATION_TOKEN and cert.location == token.serial
    assert cert.status == cpb.CERTIFICATE_STATUS_ACTIVE and cert.customer_ref == "C-1001"
    parsed = x509.load_der_x509_certificate(cert.der)
    assert parsed.not_valid_after_utc - parsed.not_valid_before_utc > dt.timedelta(days=364)
    # the certificate chains to the CA for OpenSSL too
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(parsed.public_bytes(serialization.Encoding.PEM))
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(ca.ca.ca_pem), str(leaf)],
                              capture_output=True, text=True)
    assert verified.returncode == 0 and ": OK" in verified.stdout
    # the key is on the token, not extractable, with the certificate next to it
    key_id = key_of(teller.tokens, session, cert.serial)
    keys = teller.tokens.ListObjects(tpb.TokenListObjectsRequest(session=session)).keys
    assert any(k.key_id == key_id and not k.extractable and k.has_certificate for k in keys)
    # a login challenge signed on the token verifies with the certificate
    signature = sign(teller.tokens, session, key_id)
    check = teller.backend.VerifyCertificateSignature(cpb.VerifyCertificateSignatureRequest(
        certificate=cert.der, signature=signature, data=b"login challenge 7f3a"))
    assert check.accepted and check.check.verdict == cpb.VERDICT_VALID
    assert check.check.source == "ocsp"
    # revoked at the CA itself (key leaked, reported there): until the responder's nextUpdate
    # the cached good answer stands (CA art. 7(1)); after it, the next signature is refused
    ca.ca.revoke(int(cert.serial, 16), x509.ReasonFlags.key_compromise)
    sign(teller.tokens, session, key_id)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=61)
    ca.clock.set(later)
    ca.start_ocsp(fake_time=later.strftime("@%Y-%m-%d %H:%M:%S"))  # the responder's clock too
    with pytest.raises(grpc.RpcError) as refused:
        sign(teller.tokens, session, key_id)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details_of(refused.value).reason == "CERTIFICATE_REVOKED"
    assert "revoked at the CA" in (refused.value.details() or "")
    assert "key was lost or leaked" in (refused.value.details() or "")
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.verdict == cpb.VERDICT_REVOKED and check.revocation_reason == "keyCompromise"
