"""Limits that hold before a caller is known: message sizes by method, undecodable requests,
connections that never send a request, and the memory a flood of large requests costs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd import pki
from authd.errors import details_of
from authd.limits import DEFAULT
from authd.v1 import otp_pb2 as O
from tests.floods import (
    flood,
    idle_http2,
    memory_mib,
    padded_message,
    silent_tcp,
    silent_tls,
)
from tests.nodes import Node

VERIFY = "/authd.v1.OtpService/Verify"
SIGN = "/authd.v1.TokenService/Sign"
UNDECODABLE = b"\xff\xff\xff\xff"  # a field number 0 with a truncated varint
PYTHON_WORDS = ("DecodeError", "Exception", "<class", "Traceback", "google.protobuf")


def raw_call(channel: grpc.Channel, method: str, body: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary(method)(body, timeout=30)
    return err.value


def test_a_request_above_its_method_limit_is_refused_before_it_is_parsed(server) -> None:
    srv = server()
    ch = srv.channel("bank-a", "backend")
    err = raw_call(ch, VERIFY, padded_message(DEFAULT + 1024))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"takes at most {DEFAULT:,}" in (err.details() or "")
    details = details_of(err)
    assert details.reason == "REQUEST_TOO_LARGE" and details.metadata["limit"] == str(DEFAULT)
    # The same size is within the limit of a method that carries data (here: refused by the
    # service for its content, not for its size).
    err = raw_call(srv.channel("bank-a", "branch"), SIGN, padded_message(DEFAULT + 1024))
    assert err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_center_node_takes_nothing_larger_than_its_largest_request(server) -> None:
    srv = server(roles=["center"])
    err = raw_call(srv.channel("bank-a", "backend"), VERIFY, padded_message(64 * 1024))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # by gRPC itself: 16 KiB


@pytest.mark.parametrize("method", [VERIFY, "/authd.v1.SystemService/WhoAmI",
                                    "/grpc.health.v1.Health/Check"])
def test_undecodable_requests_are_invalid_argument_without_a_traceback(
        server, caplog: pytest.LogCaptureFixture, method: str) -> None:
    srv = server()
    caplog.set_level(logging.DEBUG)
    err = raw_call(srv.channel("bank-a", "backend"), method, UNDECODABLE)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in (err.details() or "")
    assert not any(word in (err.details() or "") for word in PYTHON_WORDS)
    assert details_of(err).reason == "UNDECODABLE_REQUEST"
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def _verify_stream(srv: Any, messages: list[bytes]) -> tuple[list[bytes], grpc.RpcError]:
    ch = srv.channel("bank-a", "backend")
    call = ch.stream_stream("/authd.v1.OtpService/VerifyStream")(iter(messages), timeout=30)
    answers = []
    with pytest.raises(grpc.RpcError) as err:
        for answer in call:
            answers.append(answer)
    return answers, err.value


@pytest.mark.parametrize("bad,code", [
    (UNDECODABLE, grpc.StatusCode.INVALID_ARGUMENT),
    (padded_message(DEFAULT + 1024), grpc.StatusCode.RESOURCE_EXHAUSTED),
])
def test_a_bad_message_in_a_stream_ends_it_with_its_status(
        server, caplog: pytest.LogCaptureFixture, bad: bytes, code: grpc.StatusCode) -> None:
    srv = server()
    caplog.set_level(logging.DEBUG)
    good = O.VerifyRequest(serial="OTP-NONE", code="123456", request_id="1").SerializeToString()
    answers, err = _verify_stream(srv, [good, bad, good])
    assert err.code() == code
    assert len(answers) <= 1  # the first request's answer, at most
    assert not [r for r in caplog.records if r.exc_info]


def _tls_server(server: Any, tmp_path: Path, **settings: Any) -> tuple[Any, Path]:
    pki_dir = pki.create_dev_pki(tmp_path / "pki")
    srv = server(server={"insecure": False, "tls_cert": str(pki_dir / "server.pem"),
                         "tls_key": str(pki_dir / "server.key"),
                         "client_ca": str(pki_dir / "ca.pem"), **settings})
    return srv, pki_dir


def test_connections_that_never_send_a_request_are_closed(server, tmp_path: Path) -> None:
    srv, pki_dir = _tls_server(server, tmp_path, handshake_timeout_seconds=1.0,
                               idle_timeout_seconds=1.0)
    # No TLS handshake at all; a handshake and then silence: the handshake deadline.
    assert silent_tcp("127.0.0.1", srv.port, timeout=30) < 20
    assert silent_tls("127.0.0.1", srv.port, pki_dir, timeout=30) < 20
    # HTTP/2 is up but no call starts: closed after the idle time, with a GOAWAY.
    took, goaway = idle_http2("127.0.0.1", srv.port, pki_dir, timeout=30)
    assert took < 20 and goaway
    # A connection in use is not idle; a client whose connection was closed reconnects.
    ch = grpc.secure_channel(f"localhost:{srv.port}", grpc.ssl_channel_credentials(
        (pki_dir / "ca.pem").read_bytes(), (pki_dir / "bank-a-backend.key").read_bytes(),
        (pki_dir / "bank-a-backend.pem").read_bytes()))
    health = health_pb2_grpc.HealthStub(ch)
    for _ in range(2):
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == \
            health_pb2.HealthCheckResponse.SERVING
    ch.close()


def test_the_default_handshake_deadline_is_not_grpcs_two_minutes(server, tmp_path: Path) -> None:
    srv, _ = _tls_server(server, tmp_path)
    assert silent_tcp("127.0.0.1", srv.port, timeout=60) < 30  # 10 s by default


def test_a_flood_of_large_requests_is_refused_and_memory_stays_bounded(tmp_path: Path) -> None:
    """120 concurrent 3.9 MiB requests from a valid certificate raised the server's resident
    set by about 580 MiB before the limits (docs/daemon.md); now they are refused at the
    transport and cost little."""
    data = tmp_path / "node"
    node = Node(data, f"sqlite:///{data / 'authd.db'}", {"SOFTHSM2_CONF": None},
                insecure=False)
    try:
        before, _ = memory_mib(node.proc.pid)
        answers = flood(f"localhost:{node.port}", data / "pki", 120, int(3.9 * 1024 * 1024))
        after, _ = memory_mib(node.proc.pid)
        assert answers == {"RESOURCE_EXHAUSTED": 120}
        assert after - before < 150, (before, after)
    finally:
        assert node.terminate() == 0
