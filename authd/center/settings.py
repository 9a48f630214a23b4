"""The ``[center]`` section: how a branch node reaches the center cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from authd.settings import setting


@dataclass(frozen=True)
class CenterSettings:
    SECTION: ClassVar[str] = "center"
    urls: tuple[str, ...] = setting(
        (), "the center's nodes, tried in this order with failover: HOST:PORT each, or one "
            "gRPC target naming several (dns:///center.example:50051 for a DNS name with "
            "several records; ipv4:10.0.0.1:50051,10.0.0.2:50051). Empty: this node holds "
            "the center's state itself (center role) or has no center")
    tls_cert: str = setting("", "this branch node's client certificate (PEM): O = "
                                "institution, OU = branch, CN = terminal")
    tls_key: str = setting("", "its private key (PEM)")
    ca: str = setting("", "CA certificates the center's server certificate must chain to")
    server_name: str = setting("", "the name the center's certificate is checked against; "
                                   "empty: the host of each url")
    connect_timeout: float = setting(
        2.0, "seconds to connect to one center node before the next is tried")
    call_timeout: float = setting(10.0, "seconds a call to the center may take")
    health_interval: float = setting(
        5.0, "seconds between checks of the center nodes' health (0: only calls tell)")
    recovery_interval: float = setting(
        3.0, "seconds between attempts to settle work the link broke off (a provisioning "
             "whose confirmation got no answer)")

    def problems(self) -> list[str]:
        out = []
        if any(not u.strip() or "\x00" in u for u in self.urls):
            out.append("urls must not hold empty addresses")
        if len(set(self.urls)) != len(self.urls):
            out.append("urls must not repeat an address")
        if self.urls and not (self.tls_cert and self.tls_key and self.ca):
            out.append("urls need tls_cert, tls_key and ca (the branch node's own mTLS "
                       "certificate)")
        if not 0 < self.connect_timeout <= 60:
            out.append("connect_timeout must be in (0, 60]")
        if not 0 < self.call_timeout <= 600:
            out.append("call_timeout must be in (0, 600]")
        if self.health_interval < 0:
            out.append("health_interval must not be negative")
        if not 0 < self.recovery_interval <= 3600:
            out.append("recovery_interval must be in (0, 3600]")
        return out


SETTINGS = CenterSettings
