"""The branch → center link: forwarding with the branch node's certificate, the teller in the
center's audit, who may use a branch node, failover, and a center that is down."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.center.feature import CenterFeature
from authd.center.link import NODE_SERVICE
from authd.errors import details_of
from authd.health import NOT_SERVING, SERVING
from authd.v1 import otp_pb2 as O
from authd.v1 import otp_pb2_grpc, system_pb2, system_pb2_grpc, token_pb2, token_pb2_grpc
from devices.errors import BadRequest
from tests.conftest import wait_for
from tests.split import BRANCH_DEVICES, FAST_LINK, Pki, operator, terminal_name
from tests.tcpproxy import DROP_REPLIES, TcpProxy

OTP = "OTP-LINK-0001"
OTP_SERVICE = "authd.v1.OtpService"


@pytest.fixture
def pki_dir(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path / "pki")


def center_node(server: Any, pki: Pki, store_url: str) -> Any:
    return server(store_url=store_url, roles=["center"], server=pki.server_tls(),
                  security_card={"embosser": "", "printer": ""})


def branch_node(server: Any, pki: Pki, institution: str, *centers: Any, **more: Any) -> Any:
    link = pki.link(institution, [c.address for c in centers], **FAST_LINK)
    return server(roles=["branch"], center=link, **BRANCH_DEVICES, **more)


def enroll(stub: otp_pb2_grpc.OtpServiceStub, serial: str = OTP,
           operator: str = "T-0042") -> O.EnrollResponse:
    return stub.Enroll(O.EnrollRequest(customer_id="C-1", serial=serial, operator_id=operator,
                                       parameters=O.OtpParameters(kind=O.OTP_KIND_HOTP)),
                       timeout=30)


def rpc_error(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def center_audit(pki: Pki, center: Any, target: str) -> list[system_pb2.AuditEntry]:
    ops = system_pb2_grpc.SystemServiceStub(pki.channel(center.address, "ops"))
    return list(ops.ListAudit(system_pb2.ListAuditRequest(target=target)).entries)


def test_a_teller_at_a_branch_node_reaches_the_center(server: Any, pki_dir: Pki,
                                                      store_url: str) -> None:
    center = center_node(server, pki_dir, store_url)
    branch = branch_node(server, pki_dir, "bank-a", center)
    teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    enrolled = enroll(teller)
    assert enrolled.device.serial == OTP and enrolled.generated_seed
    teller.Unlock(O.UnlockRequest(serial=OTP, operator_id="kim", reason="ID checked"))

    # At the center: the branch node's certificate is the caller, the teller its operator.
    entries = {e.action: e for e in center_audit(pki_dir, center, OTP)}
    assert entries["otp.enroll"].institution == "bank-a"
    assert entries["otp.enroll"].role == "branch"
    assert entries["otp.enroll"].subject == terminal_name("bank-a")
    assert operator(entries["otp.enroll"]) == "T-0042"
    assert operator(entries["otp.unlock"]) == "kim"
    # The backend of the institution sees the device at the center itself.
    backend = otp_pb2_grpc.OtpServiceStub(pki_dir.channel(center.address, "bank-a-backend"))
    assert backend.GetStatus(O.GetStatusRequest(serial=OTP)).serial == OTP


def test_the_centers_refusals_reach_the_terminal_unchanged(server: Any, pki_dir: Pki,
                                                           tmp_path: Path) -> None:
    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    branch = branch_node(server, pki_dir, "bank-a", center)
    teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    direct = otp_pb2_grpc.OtpServiceStub(pki_dir.channel(center.address, "bank-a-teller"))
    for call in (
        lambda s: s.GetStatus(O.GetStatusRequest(serial="OTP-NOPE-1")),
        lambda s: s.Enroll(O.EnrollRequest(customer_id="C-1", serial="bad serial",
                                           operator_id="x")),
        lambda s: s.Unlock(O.UnlockRequest(serial=OTP, operator_id="kim")),
    ):
        via_branch = rpc_error(lambda call=call: call(teller))
        at_center = rpc_error(lambda call=call: call(direct))
        assert via_branch.code() == at_center.code()
        assert via_branch.details() == at_center.details()
        assert details_of(via_branch) == details_of(at_center)
    assert details_of(rpc_error(lambda: teller.Enroll(O.EnrollRequest(
        customer_id="C-1", serial="bad serial", operator_id="x")))).field == "serial"


def test_a_branch_node_acts_for_its_own_institutions_tellers_only(
        server: Any, pki_dir: Pki, tmp_path: Path) -> None:
    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    branch = branch_node(server, pki_dir, "bank-a", center)
    enroll(otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07")))
    for institution, role in (("bank-b", "branch"), ("bank-a", "backend"), ("bank-a", "admin")):
        stub = otp_pb2_grpc.OtpServiceStub(branch.channel(institution, role, "x"))
        err = rpc_error(lambda stub=stub: stub.GetStatus(O.GetStatusRequest(serial=OTP)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert ("acts for bank-a only" if institution == "bank-b" else "role branch") in str(
            err.details())
    # A backend's stream is not forwarded at all.
    backend = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "t"))
    err = rpc_error(lambda: list(backend.VerifyStream(iter([O.VerifyRequest(serial=OTP,
                                                                            code="123456")]))))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_center_down_answers_unavailable_and_device_work_goes_on(
        server: Any, pki_dir: Pki, tmp_path: Path) -> None:
    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    branch = branch_node(server, pki_dir, "bank-a", center)
    teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    enroll(teller)
    health = branch.app.health
    assert health.serving(OTP_SERVICE)
    center.stop()

    err = rpc_error(lambda: teller.GetStatus(O.GetStatusRequest(serial=OTP), timeout=30))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "center is unreachable" in str(err.details())
    assert details_of(err).reason == "CENTER_UNREACHABLE"
    assert wait_for(lambda: not health.serving(OTP_SERVICE), timeout=10)
    assert "center" in health.failing(OTP_SERVICE)
    # Device-local work on the branch goes on, and its service stays SERVING.
    tokens = token_pb2_grpc.TokenServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    tokens.ListTokens(token_pb2.ListTokensRequest(), timeout=30)
    assert health.serving("authd.v1.TokenService")
    statuses = _health_statuses(branch)
    assert statuses[OTP_SERVICE] == NOT_SERVING
    assert statuses["authd.v1.TokenService"] == SERVING


def _health_statuses(srv: Any) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(srv.channel())
    return {name: stub.Check(health_pb2.HealthCheckRequest(service=name)).status
            for name in (OTP_SERVICE, "authd.v1.TokenService")}


def test_failover_to_the_second_center_node_and_back(server: Any, pki_dir: Pki,
                                                     tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'center.db'}"
    first, second = center_node(server, pki_dir, store), center_node(server, pki_dir, store)
    branch = branch_node(server, pki_dir, "bank-a", first, second)
    teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    enroll(teller)
    first.stop()
    # Not a read: sent only to a node it could connect to, so failing over is safe.
    teller.Unlock(O.UnlockRequest(serial=OTP, operator_id="kim", reason="ID checked"),
                  timeout=30)
    entries = center_audit(pki_dir, second, OTP)
    assert [e.action for e in entries if e.action == "otp.unlock"] == ["otp.unlock"]
    link = branch.app.require(CenterFeature).link
    assert [e.up for e in link.endpoints] == [False, True]
    assert branch.app.health.serving(OTP_SERVICE)  # one node answers: the link is up
    # Each node's own health, as the link last saw it, for a client of the branch node.
    stub = health_pb2_grpc.HealthStub(branch.channel())
    assert [stub.Check(health_pb2.HealthCheckRequest(service=NODE_SERVICE + e.target),
                       timeout=10).status for e in link.endpoints] == [NOT_SERVING, SERVING]


def unlocks(pki: Pki, center: Any) -> int:
    return len([e for e in center_audit(pki, center, OTP) if e.action == "otp.unlock"])


def test_a_change_whose_answer_is_lost_is_answered_by_the_next_node_once(
        server: Any, pki_dir: Pki, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'center.db'}"
    first, second = center_node(server, pki_dir, store), center_node(server, pki_dir, store)
    with TcpProxy(("127.0.0.1", first.port)) as proxy:
        branch = branch_node(server, pki_dir, "bank-a", proxy, second)
        teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
        enroll(teller)
        # The first node gets the change and makes it; its answer never comes back. The link
        # sends it again, with the same idempotency key, to the second node, which answers
        # with the first node's answer instead of unlocking again.
        proxy.set(DROP_REPLIES)
        status = teller.Unlock(O.UnlockRequest(serial=OTP, operator_id="kim",
                                               reason="ID checked"), timeout=60)
        assert status.serial == OTP and status.state == O.DEVICE_STATE_ACTIVE
        assert unlocks(pki_dir, second) == 1


def test_a_change_lost_at_every_node_is_sent_again_with_its_key(
        server: Any, pki_dir: Pki, store_url: str) -> None:
    center = center_node(server, pki_dir, store_url)
    with TcpProxy(("127.0.0.1", center.port)) as proxy:
        branch = branch_node(server, pki_dir, "bank-a", proxy)
        teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
        enroll(teller)
        proxy.set(DROP_REPLIES)
        unlock = O.UnlockRequest(serial=OTP, operator_id="kim", reason="ID checked")
        err = rpc_error(lambda: teller.Unlock(unlock, timeout=60))
        answer = details_of(err)
        assert answer.reason == "CENTER_OUTCOME_UNKNOWN"
        key = answer.metadata["idempotency_key"]
        assert key in (err.details() or "")
        assert wait_for(lambda: unlocks(pki_dir, center) == 1, timeout=10)
        # The teller sends it again with the key it was given: the center's first answer.
        proxy.forward()
        status = teller.Unlock(unlock, timeout=60,
                               metadata=[("x-authd-idempotency-key", key)])
        assert status.serial == OTP and status.state == O.DEVICE_STATE_ACTIVE
        assert unlocks(pki_dir, center) == 1
        # The same key for another change is refused, with the center's reason.
        err = rpc_error(lambda: teller.ReportLost(O.ReportLostRequest(serial=OTP), timeout=30,
                                                  metadata=[("x-authd-idempotency-key", key)]))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert details_of(err).reason == "IDEMPOTENCY_KEY_REUSED"


def test_a_change_whose_connection_breaks_under_it_is_sent_again_on_a_new_one(
        server: Any, pki_dir: Pki, store_url: str) -> None:
    """The only center node is well, but the connection to it breaks while the change is on
    its way: the link asks that node again on a new connection, with the same key, and the
    teller gets the center's answer instead of an outcome it has to look up."""
    center = center_node(server, pki_dir, store_url)
    with TcpProxy(("127.0.0.1", center.port)) as proxy:
        # no health checks: the next request on the connection is the teller's
        link = pki_dir.link("bank-a", [proxy.address], **{**FAST_LINK, "health_interval": 0})
        branch = server(roles=["branch"], center=link, **BRANCH_DEVICES)
        teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
        enroll(teller)
        connections = proxy.connections
        proxy.break_next()
        status = teller.Unlock(O.UnlockRequest(serial=OTP, operator_id="kim",
                                               reason="ID checked"), timeout=60)
        assert status.serial == OTP and status.state == O.DEVICE_STATE_ACTIVE
        assert proxy.broken == 1 and proxy.connections > connections
        assert unlocks(pki_dir, center) == 1


def test_a_center_node_that_comes_back_is_asked_at_once(server: Any, pki_dir: Pki,
                                                         tmp_path: Path) -> None:
    """A center node down for a while and back on its port is used by the next call, not after
    the reconnect backoff its channel had grown while the node was down (up to ~2.4 s, beyond
    the 1 s connect timeout)."""
    store = f"sqlite:///{tmp_path / 'center.db'}"
    first = center_node(server, pki_dir, store)
    port = first.port
    branch = branch_node(server, pki_dir, "bank-a", first)
    teller = otp_pb2_grpc.OtpServiceStub(branch.channel("bank-a", "branch", "teller-07"))
    enroll(teller)
    first.stop()
    down_until = time.monotonic() + 6  # failed attempts grow a channel's backoff to its maximum
    while time.monotonic() < down_until:
        err = rpc_error(lambda: teller.GetStatus(O.GetStatusRequest(serial=OTP), timeout=30))
        assert details_of(err).reason == "CENTER_UNREACHABLE"
    server(store_url=store, roles=["center"],
           server={**pki_dir.server_tls(), "listen": f"127.0.0.1:{port}"},
           security_card={"embosser": "", "printer": ""})
    for _ in range(5):  # every call, not only a lucky first one
        assert teller.GetStatus(O.GetStatusRequest(serial=OTP), timeout=30).serial == OTP


def test_link_settings_are_checked(server: Any, pki_dir: Pki, tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="tls_cert, tls_key and ca"):
        server(roles=["branch"], center={"urls": ["127.0.0.1:1"]})
    with pytest.raises(BadRequest, match="OU = branch"):
        server(roles=["branch"], center={
            "urls": ["127.0.0.1:1"], "tls_cert": pki_dir.path("bank-a-backend.pem"),
            "tls_key": pki_dir.path("bank-a-backend.key"), "ca": pki_dir.path("ca.pem")})
    with pytest.raises(BadRequest, match="branch-only"):
        server(center=pki_dir.link("bank-a", ["127.0.0.1:1"]))


def test_a_branch_node_starts_while_the_center_is_down(server: Any, pki_dir: Pki) -> None:
    started = time.monotonic()
    branch = server(roles=["branch"], center=pki_dir.link("bank-a", ["127.0.0.1:1"], **FAST_LINK),
                    **BRANCH_DEVICES)
    assert time.monotonic() - started < 20
    assert not branch.app.health.serving(OTP_SERVICE)
    why = json.dumps(branch.app.health.failing(OTP_SERVICE))
    assert "127.0.0.1:1" in why


def test_authctl_tries_the_center_nodes_in_order(server: Any, pki_dir: Pki, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from authd.ctl import main as authctl
    from tests.pgcluster import closed_port

    center = center_node(server, pki_dir, f"sqlite:///{tmp_path / 'center.db'}")
    with closed_port() as one, closed_port() as another:
        dead = f"127.0.0.1:{one}"
        code = authctl(["--addr", f"{dead},{center.address}", "--pki", str(pki_dir.directory),
                        "--identity", "bank-a-backend", "whoami"])
        out = capsys.readouterr()
        assert code == 0 and "institution bank-a" in out.out
        assert f"{dead} did not answer" in out.err
        with pytest.raises(SystemExit, match="none of"):
            authctl(["--addr", f"{dead},127.0.0.1:{another}", "--pki",
                     str(pki_dir.directory), "--identity", "bank-a-backend", "whoami"])
