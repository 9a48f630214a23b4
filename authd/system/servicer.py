"""``authd.v1.SystemService``: who am I, daemon info, the audit trail (search, export, head)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from authd import __version__, validate
from authd.app import App
from authd.audit.chain import read_head
from authd.audit.records import AuditRecord
from authd.audit.search import AuditQuery, search
from authd.audit.settings import AuditSettings
from authd.context import Caller, Role, current_caller, require_role
from authd.v1 import system_pb2, system_pb2_grpc
from devices.errors import BadRequest, NotPermitted

MAX_AUDIT = 1000
EXPORT_PAGE = 500


def entry_of(r: AuditRecord) -> system_pb2.AuditEntry:
    return system_pb2.AuditEntry(at=r.at, institution=r.institution, role=r.role,
                                 subject=r.subject, action=r.action, target=r.target,
                                 outcome=r.outcome, detail_json=r.detail_text, id=r.id,
                                 customer=r.customer or "")


def query_for(caller: Caller, f: system_pb2.AuditFilter,
              oldest_first: bool = False) -> AuditQuery:
    """The caller's filter, bounded to what the caller may see."""
    institution = f.institution
    if caller.role is not Role.ADMIN:
        if institution and institution != caller.institution:
            raise NotPermitted("an institution sees its own audit records only")
        institution = caller.institution
    return AuditQuery(institution=institution, customer=f.customer, target=f.target,
                      since=f.since, until=f.until, outcomes=tuple(f.outcomes),
                      actions=tuple(f.actions), oldest_first=oldest_first)


def _page_token(text: str) -> int:
    if not text:
        return 0
    # ASCII digits only: str.isdigit() also takes "²" or "١", which int() refuses or reads
    if (len(text) > 19 or not (text.isascii() and text.isdigit())
            or int(text) > validate.INT64_MAX):
        raise BadRequest("page_token is not one this server gave out", field="page_token")
    return int(text)


class SystemServicer(system_pb2_grpc.SystemServiceServicer):
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings: AuditSettings = app.config.audit

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
        validate.text(request.target, "target", required=True, max_length=128)
        limit = request.limit or 100
        if not 0 < limit <= MAX_AUDIT:
            raise BadRequest(f"limit must be 1..{MAX_AUDIT}")
        q = query_for(caller, system_pb2.AuditFilter(target=request.target))
        records = await self._search(q, limit, 0)
        return system_pb2.ListAuditResponse(entries=[entry_of(r) for r in records])

    async def SearchAudit(self, request: system_pb2.SearchAuditRequest,
                          context: grpc.aio.ServicerContext) -> system_pb2.SearchAuditResponse:
        caller = require_role(Role.ADMIN, Role.BRANCH, Role.BACKEND)
        limit = request.limit or 100
        if not 0 < limit <= MAX_AUDIT:
            raise BadRequest(f"limit must be 1..{MAX_AUDIT}")
        q = query_for(caller, request.filter, request.oldest_first)
        records = await self._search(q, limit, _page_token(request.page_token))
        token = str(records[-1].id) if len(records) == limit else ""
        return system_pb2.SearchAuditResponse(entries=[entry_of(r) for r in records],
                                              next_page_token=token)

    async def ExportAudit(self, request: system_pb2.ExportAuditRequest,
                          context: grpc.aio.ServicerContext
                          ) -> AsyncIterator[system_pb2.AuditEntry]:
        caller = require_role(Role.ADMIN, Role.BRANCH, Role.BACKEND)
        q = query_for(caller, request.filter, oldest_first=True)
        after = 0
        while True:
            records = await self._search(q, EXPORT_PAGE, after)
            for r in records:
                yield entry_of(r)
            if len(records) < EXPORT_PAGE:
                return
            after = records[-1].id

    async def GetAuditHead(self, request: system_pb2.GetAuditHeadRequest,
                           context: grpc.aio.ServicerContext) -> system_pb2.GetAuditHeadResponse:
        require_role(Role.ADMIN)

        def read(tx: Any) -> system_pb2.GetAuditHeadResponse:
            head = read_head(tx)
            last = head.last_id if head else 0
            row = tx.one("SELECT COUNT(*), MIN(at_us) FROM audit_log WHERE id > ?", (last,))
            unsealed, oldest = (int(row[0]), row[1]) if row else (0, None)
            if head is None:
                return system_pb2.GetAuditHeadResponse(unsealed=unsealed,
                                                       oldest_unsealed_at=(oldest or 0) / 1e6)
            return system_pb2.GetAuditHeadResponse(
                seq=head.seq, last_id=head.last_id, hash=head.hash.hex(),
                sealed_at=head.sealed_at, key_id=head.key_id, unsealed=unsealed,
                oldest_unsealed_at=(oldest or 0) / 1e6)

        return await self.app.run_store(self.app.db.run, read, write=False)

    async def _search(self, q: AuditQuery, limit: int, after: int) -> list[AuditRecord]:
        skew = self.settings.clock_skew
        return await self.app.run_store(
            self.app.db.run, lambda tx: search(tx, q, limit=limit, after_id=after,
                                               clock_skew=skew), write=False)
