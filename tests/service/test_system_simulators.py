"""Simulators are off for ``authd serve`` unless configured: no simulated device listens and
no simulator service is served; the demo and the tests switch them on."""

from __future__ import annotations

import os
import re
from pathlib import Path

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from authd import config as configmod
from tests.nodes import Node

HID_SIMULATOR = "authd.v1.HidSimulatorService"


def listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            inodes.update(int(n) for n in re.findall(r"socket:\[(\d+)\]", os.readlink(fd)))
        except OSError:
            continue
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def served_services(address: str) -> set[str]:
    with grpc.insecure_channel(address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answer = next(iter(stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=30)))
    return {s.name for s in answer.list_services_response.service}


def _node(tmp_path: Path, simulators: str | None) -> Node:
    # The embedded default of a fresh install: its own SoftHSM2 token in the data directory.
    return Node(tmp_path / "node", f"sqlite:///{tmp_path / 'node' / 'authd.db'}",
                {"AUTHD_SIMULATORS": simulators, "SOFTHSM2_CONF": None})


def test_the_default_configuration_has_simulators_off() -> None:
    assert configmod.load(None, environ={}).simulators is False


def test_serve_runs_no_simulator_by_default(tmp_path: Path) -> None:
    node = _node(tmp_path, None)
    try:
        services = served_services(node.address)
        assert "authd.v1.HidOtpService" in services and HID_SIMULATOR not in services
        # Only the gRPC port: no embosser or printer simulator listens.
        assert listening_ports(node.proc.pid) == {node.port}
    finally:
        assert node.terminate() == 0


def test_simulators_when_switched_on(tmp_path: Path) -> None:
    node = _node(tmp_path, "true")
    try:
        assert HID_SIMULATOR in served_services(node.address)
        # The embosser and the printer simulators, on loopback ports of their own.
        assert len(listening_ports(node.proc.pid) - {node.port}) == 2
    finally:
        assert node.terminate() == 0
