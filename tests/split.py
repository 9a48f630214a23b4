"""A split deployment for tests: a development PKI, center nodes serving mTLS, branch nodes
whose ``[center]`` link reaches them with a branch certificate of their institution."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from authd.client import identity_channel
from authd.demo_steps.topology import create_pki, terminal_name

INSTITUTIONS = ("bank-a", "bank-b", "bank-c")
__all__ = ["terminal_name"]


@dataclass(frozen=True)
class Pki:
    directory: Path

    @classmethod
    def create(cls, directory: Path, institutions: Sequence[str] = INSTITUTIONS) -> Pki:
        create_pki(directory, institutions)
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


def operator(entry: Any) -> str:
    """The teller an audit record names beside its terminal (``authd.v1.AuditEntry``)."""
    return str(json.loads(entry.detail_json).get("operator", ""))
