"""The daemon's wiring through a real gRPC channel: identity, health, reflection, TLS."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authd import pki
from authd.client import identity_channel
from authd.v1 import system_pb2, system_pb2_grpc
from devices.errors import BadRequest


def test_dev_mode_caller_comes_from_metadata(server):
    srv = server()
    stub = system_pb2_grpc.SystemServiceStub(srv.channel("bank-b", "backend", "node-7"))
    me = stub.WhoAmI(system_pb2.WhoAmIRequest())
    assert (me.institution, me.role, me.subject) == ("bank-b", "backend", "node-7")


@pytest.mark.parametrize("institution,role", [("", "branch"), ("bank-a", "root"),
                                              ("bank a;drop", "branch")])
def test_bad_caller_is_unauthenticated(server, institution, role):
    srv = server()
    stub = system_pb2_grpc.SystemServiceStub(srv.channel(institution, role))
    with pytest.raises(grpc.RpcError) as err:
        stub.WhoAmI(system_pb2.WhoAmIRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_insecure_mode_refuses_non_loopback(server):
    with pytest.raises(BadRequest, match="non-loopback"):
        server(server={"listen": "0.0.0.0:0", "insecure": True})


def test_health_and_reflection(server):
    srv = server()
    ch = grpc.insecure_channel(srv.address)
    health = health_pb2_grpc.HealthStub(ch)
    for service in ("", "authd.v1.SystemService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        health.Check(health_pb2.HealthCheckRequest(service="authd.v1.Nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    answer = next(iter(refl.ServerReflectionInfo(iter([
        reflection_pb2.ServerReflectionRequest(list_services="")]))))
    names = {s.name for s in answer.list_services_response.service}
    assert "authd.v1.SystemService" in names and "grpc.health.v1.Health" in names
    ch.close()


def test_mtls_caller_comes_from_certificate(server, tmp_path: Path):
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    ch = identity_channel(f"localhost:{srv.port}", pki_dir, "bank-c-teller")
    me = system_pb2_grpc.SystemServiceStub(ch).WhoAmI(system_pb2.WhoAmIRequest(), timeout=10)
    assert (me.institution, me.role, me.subject) == ("bank-c", "branch", "bank-c-teller")
    ch.close()

    # Metadata cannot override the certificate.
    ch = identity_channel(f"localhost:{srv.port}", pki_dir, "bank-a-backend")
    me = system_pb2_grpc.SystemServiceStub(ch).WhoAmI(
        system_pb2.WhoAmIRequest(), metadata=[("x-authd-role", "admin")], timeout=10)
    assert me.role == "backend"
    ch.close()


def test_mtls_rejects_client_without_certificate(server, tmp_path: Path):
    pki_dir = pki.create_dev_pki(tmp_path / "pki", clients=[])
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem")})
    creds = grpc.ssl_channel_credentials(root_certificates=(pki_dir / "ca.pem").read_bytes())
    ch = grpc.secure_channel(f"localhost:{srv.port}", creds)
    with pytest.raises(grpc.RpcError) as err:
        system_pb2_grpc.SystemServiceStub(ch).WhoAmI(system_pb2.WhoAmIRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    ch.close()


def test_audit_listing_needs_admin_or_branch(server):
    srv = server()
    stub = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "backend"))
    with pytest.raises(grpc.RpcError) as err:
        stub.ListAudit(system_pb2.ListAuditRequest(target="x"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = system_pb2_grpc.SystemServiceStub(srv.channel("ops", "admin"))
    with pytest.raises(grpc.RpcError) as err:
        admin.ListAudit(system_pb2.ListAuditRequest(target=""))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(admin.ListAudit(system_pb2.ListAuditRequest(target="nothing")).entries) == []


def test_failed_start_releases_everything(server, monkeypatch):
    """A feature that fails to start leaves no listener, token session or thread behind."""
    from authd.token.feature import TokenFeature

    async def fail(self: TokenFeature) -> None:
        raise RuntimeError("the token watcher could not start")

    monkeypatch.setattr(TokenFeature, "start", fail)
    with pytest.raises(RuntimeError, match="token watcher"):
        server()
    monkeypatch.undo()
    srv = server()  # the KEK token can be opened again: the failed start logged out
    stub = system_pb2_grpc.SystemServiceStub(srv.channel("bank-a", "branch"))
    assert stub.WhoAmI(system_pb2.WhoAmIRequest()).institution == "bank-a"


def test_prometheus_metrics_without_secrets(server):
    import urllib.request

    from authd.v1 import otp_pb2, otp_pb2_grpc

    srv = server(server={"metrics_listen": "127.0.0.1:0"})
    port = srv._bg.running.metrics.port
    branch = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "branch"))
    branch.Enroll(otp_pb2.EnrollRequest(customer_id="C-1",
        serial="OTP-MET-1", operator_id="op", seed=b"12345678901234567890",
        parameters=otp_pb2.OtpParameters(kind=otp_pb2.OTP_KIND_HOTP)))
    backend = otp_pb2_grpc.OtpServiceStub(srv.channel("bank-a", "backend"))
    backend.Verify(otp_pb2.VerifyRequest(serial="OTP-MET-1", code="755224"))
    with pytest.raises(grpc.RpcError):
        backend.Verify(otp_pb2.VerifyRequest(serial="OTP-MET-1", code="12x"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'authd_rpcs_total{code="OK",method="/authd.v1.OtpService/Verify"}' in text
    assert 'code="INVALID_ARGUMENT",method="/authd.v1.OtpService/Verify"' in text
    assert 'authd_otp_verifications_total{institution="bank-a",outcome="accepted"}' in text
    assert "authd_otp_commit_batch_size_count" in text
    assert "755224" not in text and "OTP-MET-1" not in text


def test_roles_switch_services_on(server):
    center = server(roles=["center"])
    assert "authd.v1.OtpService" in center.app.service_names
    assert "authd.v1.TokenService" not in center.app.service_names
    branch = server(roles=["branch"])
    assert "authd.v1.TokenService" in branch.app.service_names
    assert "authd.v1.OtpService" not in branch.app.service_names
    with pytest.raises(BadRequest, match="roles"):
        server(roles=["bank"])
