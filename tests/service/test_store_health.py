"""A node whose store stops answering reports NOT_SERVING on every service (and SERVING again
once it answers): PostgreSQL reached through a TCP proxy that this test cuts, and one that
swallows the probe without answering."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grpc_health.v1 import health_pb2, health_pb2_grpc

from authd.health import SERVING
from tests.conftest import wait_for
from tests.tcpproxy import DELAY, REFUSE, TcpProxy

FAST = {"store": {"health_interval_seconds": 0.2, "timeout_seconds": 1.0}}


def through(proxy_of: Any, url: str) -> tuple[TcpProxy, str]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    proxy = proxy_of((parts.hostname, parts.port))
    netloc = f"{parts.username}@{proxy.address}" if parts.username else proxy.address
    return proxy, urlunsplit(parts._replace(netloc=netloc))


def statuses(srv: Any) -> dict[str, int]:
    stub = health_pb2_grpc.HealthStub(srv.channel())
    return {name: stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            for name in ("", "authd.v1.OtpService", "authd.v1.CustomerService")}


def test_a_center_node_that_loses_its_store_reports_not_serving(server: Any,
                                                                pg_url: str) -> None:
    proxy, url = through(TcpProxy, pg_url)
    try:
        srv = server(store_url=url, roles=["center"], **FAST)
        assert wait_for(lambda: set(statuses(srv).values()) == {SERVING}, timeout=10)

        proxy.set(REFUSE)  # the database is gone
        assert wait_for(lambda: SERVING not in statuses(srv).values(), timeout=10)
        assert "store" in srv.app.health.failing("authd.v1.OtpService")
        proxy.set("forward")
        assert wait_for(lambda: set(statuses(srv).values()) == {SERVING}, timeout=15)

        proxy.set(DELAY, 3.0)  # it hangs instead of refusing: down after the probe's timeout
        assert wait_for(lambda: SERVING not in statuses(srv).values(), timeout=10)
        assert "store" in srv.app.health.failing("")
        proxy.set("forward")
        assert wait_for(lambda: set(statuses(srv).values()) == {SERVING}, timeout=20)
    finally:
        proxy.close()
