"""``authd.v1.SystemService``: who am I, daemon info, audit trail."""

from __future__ import annotations

import json

import grpc

from authd import __version__
from authd.app import App
from authd.context import Role, current_caller, require_role
from authd.v1 import system_pb2, system_pb2_grpc
from devices.errors import BadRequest

MAX_AUDIT = 1000


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app

    async def WhoAmI(self, request: system_pb2.WhoAmIRequest,
                     context: grpc.aio.ServicerContext) -> system_pb2.WhoAmIResponse:
        caller = current_caller()
        return system_pb2.WhoAmIResponse(institution=caller.institution, role=caller.role.value,
                                         subject=caller.subject)

    async def GetInfo(self, request: system_pb2.GetInfoRequest,
                      context: grpc.aio.ServicerContext) -> system_pb2.GetInfoResponse:
        current_caller()
        k = self.app.config.kek
        return system_pb2.GetInfoResponse(version=__version__, store=self.app.db.dialect,
                                          kek=f"{k.kind}/{k.mode}", services=self.app.service_names)

    async def ListAudit(self, request: system_pb2.ListAuditRequest,
                        context: grpc.aio.ServicerContext) -> system_pb2.ListAuditResponse:
        caller = require_role(Role.ADMIN, Role.BRANCH)
        if not request.target or len(request.target) > 128:
            raise BadRequest("target must be 1..128 characters")
        limit = request.limit or 100
        if not 0 < limit <= MAX_AUDIT:
            raise BadRequest(f"limit must be 1..{MAX_AUDIT}")
        records = await self.app.run_blocking(
            self.app.db.run, lambda tx: self.app.audit.for_target(tx, request.target, limit),
            write=False)
        if caller.role is Role.BRANCH:
            records = [r for r in records if r.institution == caller.institution]
        return system_pb2.ListAuditResponse(entries=[
            system_pb2.AuditEntry(at=r.at, institution=r.institution, role=r.role,
                                  subject=r.subject, operator=r.operator,
                                  action=r.action, target=r.target,
                                  outcome=r.outcome, detail_json=_json(r.detail))
            for r in records])


def _json(detail: dict[str, object]) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False)
