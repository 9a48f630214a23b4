"""Registers ``authd.v1.SystemService`` (on every node, whatever its roles)."""

from __future__ import annotations

from authd.features import Feature, Service
from authd.system.servicer import SystemServicer
from authd.system.settings import SystemSettings
from authd.v1 import system_pb2, system_pb2_grpc


class SystemFeature(Feature[SystemSettings]):
    name = "system"

    def services(self) -> list[Service]:
        return [Service.of(system_pb2.DESCRIPTOR, "SystemService",
                           system_pb2_grpc.add_SystemServiceServicer_to_server,
                           SystemServicer(self.app))]


FEATURE = SystemFeature
