"""``authd.v1.SecurityCardService``: validate the caller, convert, call the service."""

from __future__ import annotations

import grpc

from authd.app import App
from authd.context import Role, require_role
from authd.ratelimit import RateLimiter
from authd.security_card import convert
from authd.security_card.desk import LocalCardCenter, PrintDesk
from authd.security_card.service import SecurityCardService
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc

BRANCH = (Role.BRANCH,)
ASKERS = (Role.BACKEND, Role.BRANCH)


class SecurityCardServicer(pb_grpc.SecurityCardServiceServicer):
    def __init__(self, app: App, service: SecurityCardService, desk: PrintDesk) -> None:
        self.app = app
        self.service = service
        self.desk = desk
        settings = service.settings
        self.challenge_limit = RateLimiter("security_card.challenge", "security-card challenges",
                                           settings.challenge_rate)
        self.answer_limit = RateLimiter("security_card.answer", "security-card answers",
                                        settings.answer_rate)

    @property
    def _max(self) -> int:
        return self.service.settings.max_failures

    async def IssueCard(self, request: pb.IssueSecurityCardRequest,
                        context: grpc.aio.ServicerContext) -> pb.IssueSecurityCardResponse:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.desk.issue, request)

    async def ReplaceCard(self, request: pb.ReplaceSecurityCardRequest,
                          context: grpc.aio.ServicerContext) -> pb.IssueSecurityCardResponse:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.desk.replace, request)

    async def ReprintCard(self, request: pb.ReprintSecurityCardRequest,
                          context: grpc.aio.ServicerContext) -> pb.ReprintSecurityCardResponse:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.desk.reprint, request)

    async def RevokeCard(self, request: pb.RevokeSecurityCardRequest,
                         context: grpc.aio.ServicerContext) -> pb.SecurityCardStatus:
        caller = require_role(*BRANCH)
        row = await self.app.run_store(self.service.revoke, caller.institution,
                                          request.serial, request.reason)
        return convert.card_status(row, self._max)

    async def ResetCard(self, request: pb.ResetSecurityCardRequest,
                        context: grpc.aio.ServicerContext) -> pb.SecurityCardStatus:
        caller = require_role(*BRANCH)
        row = await self.app.run_store(self.service.reset, caller.institution,
                                          request.serial, request.reason)
        return convert.card_status(row, self._max)

    async def GetCard(self, request: pb.GetSecurityCardRequest,
                      context: grpc.aio.ServicerContext) -> pb.SecurityCardStatus:
        caller = require_role(*ASKERS)
        row = await self.app.run_store(self.service.get, caller.institution, request.serial)
        return convert.card_status(row, self._max)

    async def GetHolder(self, request: pb.GetSecurityCardHolderRequest,
                        context: grpc.aio.ServicerContext) -> pb.SecurityCardHolder:
        caller = require_role(*ASKERS)
        result = await self.app.run_store(self.service.holder, caller.institution,
                                             request.customer_id)
        return convert.holder(result)

    async def StartChallenge(self, request: pb.StartSecurityCardChallengeRequest,
                             context: grpc.aio.ServicerContext) -> pb.SecurityCardChallenge:
        caller = require_role(*ASKERS)
        self.challenge_limit.check(caller.institution)
        started = await self.app.run_store(self.service.start_challenge, caller.institution,
                                              request.serial, request.customer_id)
        return convert.challenge(started)

    async def VerifyAnswer(self, request: pb.VerifySecurityCardAnswerRequest,
                           context: grpc.aio.ServicerContext
                           ) -> pb.VerifySecurityCardAnswerResponse:
        caller = require_role(*ASKERS)
        self.answer_limit.check(caller.institution)
        result = await self.app.run_store(self.service.verify, caller.institution,
                                             request.challenge_id, request.answer)
        return convert.verified(result)


class SecurityCardCenterServicer(pb_grpc.SecurityCardCenterServiceServicer):
    """The center's half of printing for branch nodes (their certificate is the caller)."""

    def __init__(self, app: App, center: LocalCardCenter) -> None:
        self.app = app
        self.center = center

    async def PrepareIssue(self, request: pb.IssueSecurityCardRequest,
                           context: grpc.aio.ServicerContext) -> pb.SecurityCardPrintRelease:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.center.prepare, "issue", request)

    async def PrepareReplace(self, request: pb.ReplaceSecurityCardRequest,
                             context: grpc.aio.ServicerContext) -> pb.SecurityCardPrintRelease:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.center.prepare, "replace", request)

    async def PrepareReprint(self, request: pb.ReprintSecurityCardRequest,
                             context: grpc.aio.ServicerContext) -> pb.SecurityCardPrintRelease:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.center.prepare, "reprint", request)

    async def RecordPrint(self, request: pb.RecordSecurityCardPrintRequest,
                          context: grpc.aio.ServicerContext) -> pb.SecurityCardStatus:
        require_role(*BRANCH)
        return await self.app.run_blocking(self.center.record, request)
