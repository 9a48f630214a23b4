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
from authd.v1 import token_pb2 as tpb
from authd.v1 import token_pb2_grpc
from simulators.token.softhsm import SoftHsmToken, process_env
from tests.certificate_env import CaEnv, Teller, ca_env, use_clock

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
    use_clock(srv, ca.clock)
    return srv


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


def test_crl_answers_when_ocsp_is_down_and_a_dead_responder_fails_closed_or_open(
        server: Callable[..., Any], ca: CaEnv, token: SoftHsmToken) -> None:
    srv = start(server, ca)
    teller = Teller(srv)
    session = login(teller.tokens, token)
    cert = teller.issue({"token": cpb.TokenStorage(session=session)})
    key_id = key_of(teller.tokens, session, cert.serial)
    ca.stop_ocsp()
    # OCSP refused: the CRL over HTTP answers (good), and then knows the suspension
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.verdict == cpb.VERDICT_VALID and check.source == "crl"
    teller.certs.SuspendCertificate(cpb.SuspendCertificateRequest(
        serial=cert.serial, operator="kim", reason="customer asked: card lost abroad"))
    with pytest.raises(grpc.RpcError) as refused:
        sign(teller.tokens, session, key_id)
    assert details_of(refused.value).reason == "CERTIFICATE_SUSPENDED"
    assert "restored at a branch" in (refused.value.details() or "")
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.verdict == cpb.VERDICT_SUSPENDED and check.revocation_reason == "certificateHold"
    teller.certs.RestoreCertificate(cpb.RestoreCertificateRequest(serial=cert.serial,
                                                                  operator="kim"))
    sign(teller.tokens, session, key_id)
    # revoked: the CRL says so with its reason
    teller.certs.RevokeCertificate(cpb.RevokeCertificateRequest(
        serial=cert.serial, reason=cpb.REVOCATION_REASON_FRAUDULENT, operator="kim"))
    with pytest.raises(grpc.RpcError) as revoked:
        sign(teller.tokens, session, key_id)
    assert details_of(revoked.value).reason == "CERTIFICATE_REVOKED"
    assert "issued fraudulently" in (revoked.value.details() or "")
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.source == "crl" and check.revocation_reason == "privilegeWithdrawn"
    # neither OCSP nor the CRL answers: closed (the default) refuses with UNAVAILABLE
    ca.server.stop()
    srv.app.feature(CertificateFeature).checker.forget(cert.der)
    with pytest.raises(grpc.RpcError) as down:
        sign(teller.tokens, session, key_id)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert details_of(down.value).reason == "CERTIFICATE_STATUS_UNAVAILABLE"
    assert "could not be checked" in (down.value.details() or "")


def test_a_dead_responder_with_fail_open_allows_and_says_so(
        server: Callable[..., Any], ca: CaEnv, token: SoftHsmToken) -> None:
    srv = start(server, ca, responder_down="open")
    teller = Teller(srv)
    session = login(teller.tokens, token)
    cert = teller.issue({"token": cpb.TokenStorage(session=session)})
    key_id = key_of(teller.tokens, session, cert.serial)
    ca.stop_ocsp()
    ca.server.stop()
    sign(teller.tokens, session, key_id)
    check = teller.backend.CheckCertificate(cpb.CheckCertificateRequest(certificate=cert.der))
    assert check.allowed and check.failed_open
    assert check.verdict == cpb.VERDICT_STATUS_UNAVAILABLE and "fail-open" in check.message


def test_unbound_keys_refused_when_configured_and_untrusted_chains_refused(
        server: Callable[..., Any], ca: CaEnv, token: SoftHsmToken) -> None:
    srv = start(server, ca, unbound_keys="refuse")
    teller = Teller(srv)
    session = login(teller.tokens, token)
    bare = teller.tokens.GenerateKeyPair(tpb.TokenGenerateKeyPairRequest(
        session=session, spec=tpb.TOKEN_KEY_SPEC_EC_P256, label="bare"))
    with pytest.raises(grpc.RpcError) as refused:
        sign(teller.tokens, session, bare.key_id)
    assert details_of(refused.value).reason == "CERTIFICATE_MISSING"
    # a certificate from a CA the bank does not trust: imported, but it signs nothing
    from simulators.certificate.ca import DemoCa

    csr = teller.tokens.CreateCsr(tpb.TokenCreateCsrRequest(
        session=session, key_id=bare.key_id, subject="CN=Hong Gildong,C=KR"))
    teller.tokens.ImportCertificate(tpb.TokenImportCertificateRequest(
        session=session, certificate=DemoCa("other CA").issue(csr.csr_der)))
    with pytest.raises(grpc.RpcError) as untrusted:
        sign(teller.tokens, session, bare.key_id)
    assert details_of(untrusted.value).reason == "CERTIFICATE_UNTRUSTED"
