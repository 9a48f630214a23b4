"""Bad input gets INVALID_ARGUMENT with a clear message, the same on SQLite and PostgreSQL,
and writes nothing; a caller certificate with control characters is refused at the door."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authd import pki
from authd.client import tls_channel
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc

SEED = bytes(range(1, 21))
HOTP = O.OtpParameters(kind=O.OTP_KIND_HOTP)


def _enroll(**fields: Any) -> tuple[str, Any]:
    request: dict[str, Any] = {"serial": "OTP-IN-NEW", "operator_id": "op", "seed": SEED,
                               "parameters": HOTP, "customer_id": "C-1", **fields}
    return "Enroll", O.EnrollRequest(**request)


# (rpc, request, the words the message must contain)
CASES: dict[str, tuple[str, Any, str]] = {
    "serial with a trailing newline": (*_enroll(serial="OTP-IN-NEW\n"), "serial must be"),
    "serial with NUL": (*_enroll(serial="OTP-\x00IN"), "serial must be"),
    "huge serial": (*_enroll(serial="A" * 10_000), "serial must be"),
    "operator with NUL": (*_enroll(operator_id="kim\x00"), "operator_id must not contain"),
    "operator with a newline": (*_enroll(operator_id="kim\n"), "operator_id must not contain"),
    "huge operator": (*_enroll(operator_id="k" * 10_000), "operator_id is longer than 256"),
    "no customer": (*_enroll(customer_id=""), "customer_id (the institution's customer "
                                              "reference) is required"),
    "customer with a newline": (*_enroll(customer_id="C-1\n"), "customer_id must be"),
    "customer that is a name": (*_enroll(customer_id="홍길동"), "customer_id must be"),
    "register without a customer": ("Register", O.RegisterRequest(
        serial="OTP-IN-1", operator_id="op"), "customer_id (the institution's customer"),
    "warranty NaN": (*_enroll(warranty_until=float("nan")), "warranty_until must be a finite"),
    "warranty infinite": (*_enroll(warranty_until=float("inf")),
                          "warranty_until must be a finite"),
    "warranty negative": (*_enroll(warranty_until=-1.0), "warranty_until must be at least 0"),
    "counter 2^63": (*_enroll(parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP, counter=2**63)),
                     "parameters.counter must be 0..9223372036854775807"),
    "HOTP period beyond int32": (*_enroll(parameters=O.OtpParameters(
        kind=O.OTP_KIND_HOTP, period_seconds=2**32 - 1)), "time step must be 15..300"),
    "digits beyond int32": (*_enroll(parameters=O.OtpParameters(
        kind=O.OTP_KIND_HOTP, digits=2**32 - 1)), "digits must be 6, 7 or 8"),
    "verify serial with a newline": ("Verify", O.VerifyRequest(serial="OTP-IN-1\n",
                                                               code="123456"), "serial must be"),
    "verify code with NUL": ("Verify", O.VerifyRequest(serial="OTP-IN-1", code="12345\x00"),
                             "code must be"),
    "request id with NUL": ("Verify", O.VerifyRequest(serial="OTP-IN-1", code="123456",
                                                      request_id="r\x00"),
                            "request_id must not contain"),
    "huge request id": ("Verify", O.VerifyRequest(serial="OTP-IN-1", code="123456",
                                                  request_id="r" * 10_000),
                        "request_id is longer than"),
    "unlock reason with a newline": ("Unlock", O.UnlockRequest(
        serial="OTP-IN-1", operator_id="op", reason="ok\nFORGED LOG LINE"),
        "reason must not contain"),
    "loss report reason with NUL": ("ReportLost", O.ReportLostRequest(
        serial="OTP-IN-1", reason="lost\x00"), "reason must not contain"),
    "deregister reason with a line separator": ("Deregister", O.DeregisterRequest(
        serial="OTP-IN-1", operator_id="op", reason="a\u2028b"), "reason must not contain"),
    "replace counter 2^63": ("Replace", O.ReplaceRequest(
        old_serial="OTP-IN-1", new_serial="OTP-IN-2", operator_id="op",
        reason=O.REPLACE_REASON_REISSUE,
        parameters=O.OtpParameters(counter=2**63)), "parameters.counter"),
}
BACKEND_RPCS = {"Verify", "ReportLost"}


@pytest.fixture
def center(server, store_url):
    srv = server(store_url=store_url)
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    branch.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-IN-1", operator_id="op", seed=SEED,
                                  parameters=HOTP))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    return srv, branch, backend


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_invalid_argument_and_writes_nothing(center, case):
    _srv, branch, backend = center
    rpc, request, words = CASES[case]
    stub = backend if rpc in BACKEND_RPCS else branch
    before = branch.GetStatus(O.GetStatusRequest(serial="OTP-IN-1"))
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, rpc)(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert words in err.value.details()
    assert "\x00" not in err.value.details() and "\n" not in err.value.details()
    assert branch.GetStatus(O.GetStatusRequest(serial="OTP-IN-1")) == before
    for serial in ("OTP-IN-NEW", "OTP-IN-2"):
        with pytest.raises(grpc.RpcError) as missing:
            branch.GetStatus(O.GetStatusRequest(serial=serial))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def _client_cert(pki_dir: Path, name: str, institution: str, role: str,
                 subject: str) -> None:
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate((pki_dir / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, institution),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                # As another CA might issue it: beyond RFC 5280's 64 characters too.
                x509.NameAttribute(NameOID.COMMON_NAME, subject, _validate=False)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (pki_dir / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (pki_dir / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


BAD_CALLERS = {
    "nul-cn": ("bank-a", "backend", "ib\x00node", "subject (CN) must not contain"),
    "newline-cn": ("bank-a", "backend", "ib\nnode", "subject (CN) must not contain"),
    "long-cn": ("bank-a", "backend", "n" * 65, "longer than 64"),
    "newline-o": ("bank-a\n", "backend", "ib", "no valid institution"),
    "newline-ou": ("bank-a", "backend\n", "ib", "unknown role"),
}


@pytest.mark.filterwarnings("ignore:Attribute's length must be")
def test_certificate_with_control_characters_is_refused(server, store_url, tmp_path: Path):
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    for name, (institution, role, subject, _) in BAD_CALLERS.items():
        _client_cert(pki_dir, name, institution, role, subject)
    srv = server(store_url=store_url, server={
        "insecure": False, "tls_cert": str(pki_dir / "server.pem"),
        "tls_key": str(pki_dir / "server.key"), "client_ca": str(pki_dir / "ca.pem")})

    def stub(name: str) -> Any:
        ch = tls_channel(f"localhost:{srv.port}", pki_dir / "ca.pem", pki_dir / f"{name}.pem",
                         pki_dir / f"{name}.key")
        return ch, otp_pb2_grpc.OtpServiceStub(ch)

    ch, teller = stub("bank-a-teller")
    teller.Enroll(O.EnrollRequest(customer_id="C-1", serial="OTP-CN-1", operator_id="op", seed=SEED,
                                  parameters=HOTP), timeout=30)
    ch.close()
    for name, (_, _, _, words) in BAD_CALLERS.items():
        ch, bad = stub(name)
        with pytest.raises(grpc.RpcError) as err:
            bad.Verify(O.VerifyRequest(serial="OTP-CN-1", code="123456"), timeout=30)
        ch.close()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert words in err.value.details(), name
    ch, good = stub("bank-a-backend")
    answer = good.Verify(O.VerifyRequest(serial="OTP-CN-1", code="999999"), timeout=30)
    ch.close()
    assert answer.outcome == O.VERIFY_OUTCOME_WRONG_CODE and answer.consecutive_failures == 1
