"""A split deployment for tests: a development PKI, center nodes serving mTLS, branch nodes
whose ``[center]`` link reaches them with a branch certificate of their institution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from authd import pki
from authd.client import identity_channel
from authd.context import Role

INSTITUTIONS = ("bank-a", "bank-b", "bank-c")


def terminal_name(institution: str, n: int = 1) -> str:
    """The CN of a branch node's certificate: the terminal it runs on."""
    return f"{institution}-branch-{n:02d}"


@dataclass(frozen=True)
class Pki:
    directory: Path

    @classmethod
    def create(cls, directory: Path, institutions: Sequence[str] = INSTITUTIONS) -> Pki:
        clients = [pki.ClientSpec(terminal_name(i), i, Role.BRANCH) for i in institutions]
        clients += [pki.ClientSpec(f"{i}-backend", i, Role.BACKEND) for i in institutions]
        clients += [pki.ClientSpec(f"{i}-teller", i, Role.BRANCH) for i in institutions]
        clients.append(pki.ClientSpec("ops", "authd-ops", Role.ADMIN))
        # A certificate of the wrong kind for a branch node's link (a backend's).
        pki.create_dev_pki(directory, clients)
        return cls(directory)

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def server_tls(self) -> dict[str, Any]:
        """``[server]`` keys of a center node serving mTLS with this PKI."""
        return {"insecure": False, "tls_cert": self.path("server.pem"),
                "tls_key": self.path("server.key"), "client_ca": self.path("ca.pem")}

    def link(self, institution: str, urls: Sequence[str], **more: Any) -> dict[str, Any]:
        """The ``[center]`` section of ``institution``'s branch node."""
        name = terminal_name(institution)
        return {"urls": list(urls), "tls_cert": self.path(f"{name}.pem"),
                "tls_key": self.path(f"{name}.key"), "ca": self.path("ca.pem"), **more}

    def channel(self, address: str, name: str) -> grpc.Channel:
        """An mTLS channel as client ``name`` (e.g. ``bank-a-backend``)."""
        return identity_channel(address, self.directory, name)


# Fast failure detection for tests: a dead node is left after 1 s, health looked at often.
FAST_LINK = {"connect_timeout": 1.0, "call_timeout": 5.0, "health_interval": 0.5,
             "recovery_interval": 0.5}

# A branch node's device features for tests of the link: HID without the plug/unplug log, no
# PC/SC (smartcards are not what these tests are about, and pcscd is shared by the machine).
BRANCH_DEVICES: dict[str, Any] = {"hid_otp": {"monitor_interval": 0},
                                  "smartcard": {"enabled": False}}
