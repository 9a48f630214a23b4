"""``authd.v1.SecurityCardService``: validate the caller, convert, call the service."""

from __future__ import annotations

import grpc

from authd.app import App
from authd.context import Role, require_role
from authd.ratelimit import RateLimiter
from authd.security_card import convert
from authd.security_card.service import SecurityCardService
from authd.v1 import security_card_pb2 as pb
from authd.v1 import security_card_pb2_grpc as pb_grpc

BRANCH = (Role.BRANCH,)
ASKERS = (Role.BACKEND, Role.BRANCH)


class SecurityCardServicer(pb_grpc.SecurityCardServiceServicer):
    def __init__(self, app: App, service: SecurityCardService) -> None:
        self.app = app
        self.service = service
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
        caller = require_role(*BRANCH)
        braille = bool(convert.braille_in(request.medium, default=False))
        result = await self.app.run_blocking(
            self.service.issue, caller.institution, request.customer_id, braille,
            convert.layout_in(request.layout), request.include_svg)
        return convert.issued(result, self._max)

    async def ReplaceCard(self, request: pb.ReplaceSecurityCardRequest,
                          context: grpc.aio.ServicerContext) -> pb.IssueSecurityCardResponse:
        caller = require_role(*BRANCH)
        result = await self.app.run_blocking(
            self.service.replace, caller.institution, request.serial,
            convert.braille_in(request.medium, default=None), convert.layout_in(request.layout),
            request.reason, request.include_svg)
        return convert.issued(result, self._max)

    async def ReprintCard(self, request: pb.ReprintSecurityCardRequest,
                          context: grpc.aio.ServicerContext) -> pb.ReprintSecurityCardResponse:
        caller = require_role(*BRANCH)
        row, outcome = await self.app.run_blocking(
            self.service.reprint, caller.institution, request.serial,
            convert.layout_in(request.layout), request.reason)
        return pb.ReprintSecurityCardResponse(card=convert.card_status(row, self._max),
                                              print_job=convert.print_job(outcome))

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
