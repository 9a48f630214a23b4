"""``authd.v1.CertificateService``: caller -> validate -> convert -> service -> convert."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from authd.app import App
from authd.certificate import convert
from authd.certificate.service import CertificateService, SecurityMeans
from authd.context import Role, require_role
from authd.v1 import certificate_pb2 as pb
from authd.v1 import certificate_pb2_grpc
from devices.certificate import types as cert_types
from devices.certificate.lifecycle import RequestKind
from devices.errors import BadRequest, NoSuchObject

T = TypeVar("T")
Ctx = grpc.aio.ServicerContext
TELLER = (Role.BRANCH,)
EITHER = (Role.BRANCH, Role.BACKEND)


class CertificateServicer(certificate_pb2_grpc.CertificateServiceServicer):
    def __init__(self, app: App, service: CertificateService) -> None:
        self.app = app
        self.service = service

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.app.run_blocking(fn, *args, **kwargs)

    def _request(self, row: Any) -> pb.IssuanceRequest:
        try:
            kind = cert_types.find(self.service.settings.types, row.request.certificate_type)
        except NoSuchObject:
            kind = None
        return convert.request(row, self.service.clock(), kind)

    def _cert(self, row: Any) -> pb.Certificate:
        return convert.certificate(row, self.service.clock(),
                                   self.service.settings.renewal_window_days)

    async def OpenIssuance(self, request: pb.OpenIssuanceRequest,
                           context: Ctx) -> pb.IssuanceRequest:
        caller = require_role(*TELLER)
        row = await self._run(
            self.service.open_request, caller, customer_ref=request.customer_ref,
            certificate_type=request.certificate_type, subscriber_name=request.subscriber_name,
            kind=RequestKind.REISSUE if request.reissue else RequestKind.ISSUE,
            device_info=convert.device_info(request.device_info), operator=request.operator,
            replaces_serial=request.replaces_serial,
            proof=convert.proof(request.proof, request.HasField("proof")))
        return self._request(row)

    async def AdvanceIssuance(self, request: pb.AdvanceIssuanceRequest,
                              context: Ctx) -> pb.IssuanceRequest:
        caller = require_role(*TELLER)
        means = SecurityMeans(request.otp_serial, request.otp_code, request.card_challenge_id,
                              request.card_answer)
        row = await self._run(self.service.advance, caller, request.request_id,
                              convert.step(request.step), operator=request.operator,
                              identity_document=request.identity_document, means=means,
                              account=request.account)
        return self._request(row)

    async def CompleteIssuance(self, request: pb.CompleteIssuanceRequest,
                               context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        row = await self._run(self.service.complete, caller, request.request_id,
                              convert.target(request))
        return self._cert(row)

    async def CancelIssuance(self, request: pb.CancelIssuanceRequest,
                             context: Ctx) -> pb.IssuanceRequest:
        caller = require_role(*TELLER)
        row = await self._run(self.service.cancel_request, caller, request.request_id,
                              request.operator, request.reason)
        return self._request(row)

    async def GetIssuance(self, request: pb.GetIssuanceRequest, context: Ctx) -> pb.IssuanceRequest:
        caller = require_role(*EITHER)
        return self._request(await self._run(self.service.get_request, caller,
                                             request.request_id))

    async def RenewCertificate(self, request: pb.RenewCertificateRequest,
                               context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        row = await self._run(self.service.renew, caller, request.serial,
                              convert.target(request))
        return self._cert(row)

    async def CancelCertificate(self, request: pb.CancelCertificateRequest,
                                context: Ctx) -> pb.CancelCertificateResponse:
        caller = require_role(*TELLER)
        done = await self._run(self.service.cancel_certificate, caller, request.serial,
                               request.operator)
        return pb.CancelCertificateResponse(certificate=self._cert(done.certificate),
                                            fee_krw=done.fee_krw, refund_krw=done.refund_krw)

    async def RevokeCertificate(self, request: pb.RevokeCertificateRequest,
                                context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        return self._cert(await self._run(self.service.revoke, caller, request.serial,
                                          convert.reason(request.reason), request.operator))

    async def SuspendCertificate(self, request: pb.SuspendCertificateRequest,
                                 context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        return self._cert(await self._run(self.service.suspend, caller, request.serial,
                                          request.operator, request.reason))

    async def RestoreCertificate(self, request: pb.RestoreCertificateRequest,
                                 context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        return self._cert(await self._run(self.service.restore, caller, request.serial,
                                          request.operator))

    async def UpdateSubscriber(self, request: pb.UpdateSubscriberRequest,
                               context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        return self._cert(await self._run(self.service.update_subscriber, caller,
                                          request.serial, dict(request.changes),
                                          request.operator))

    async def EndCertificateUse(self, request: pb.EndCertificateUseRequest,
                                context: Ctx) -> pb.Certificate:
        caller = require_role(*TELLER)
        return self._cert(await self._run(self.service.end_use, caller, request.serial,
                                          convert.end_of_use(request.cause), request.operator))

    async def RegisterExternalCertificate(self, request: pb.RegisterExternalCertificateRequest,
                                          context: Ctx) -> pb.Certificate:
        caller = require_role(*EITHER)
        row = await self._run(
            self.service.register_external, caller, customer_ref=request.customer_ref,
            certificate=bytes(request.certificate), storage=convert.storage(request.storage),
            proof=convert.proof(request.proof, request.HasField("proof")),
            operator=request.operator)
        return self._cert(row)

    async def IssueOneTimeNumber(self, request: pb.IssueOneTimeNumberRequest,
                                 context: Ctx) -> pb.IssueOneTimeNumberResponse:
        caller = require_role(*TELLER)
        number, expires = await self._run(self.service.one_time_number, caller,
                                          request.customer_ref, request.operator)
        return pb.IssueOneTimeNumberResponse(number=number, expires_at=expires.timestamp())

    async def GetCertificate(self, request: pb.GetCertificateRequest,
                             context: Ctx) -> pb.Certificate:
        caller = require_role(*EITHER)
        return self._cert(await self._run(self.service.get, caller, request.serial))

    async def ListCustomerCertificates(self, request: pb.ListCustomerCertificatesRequest,
                                       context: Ctx) -> pb.ListCertificatesResponse:
        caller = require_role(*EITHER)
        rows = await self._run(self.service.customer, caller, request.customer_ref)
        return pb.ListCertificatesResponse(certificates=[self._cert(r) for r in rows])

    async def ListExpiringCertificates(self, request: pb.ListExpiringCertificatesRequest,
                                       context: Ctx) -> pb.ListCertificatesResponse:
        caller = require_role(*EITHER)
        rows = await self._run(self.service.expiring, caller)
        return pb.ListCertificatesResponse(certificates=[self._cert(r) for r in rows])

    async def CheckCertificate(self, request: pb.CheckCertificateRequest,
                               context: Ctx) -> pb.CertificateCheck:
        require_role(*EITHER)
        if not request.certificate:
            raise BadRequest("certificate is required", field="certificate")
        return convert.check(await self._run(self.service.check, bytes(request.certificate)))

    async def VerifyCertificateSignature(self, request: pb.VerifyCertificateSignatureRequest,
                                         context: Ctx) -> pb.VerifyCertificateSignatureResponse:
        require_role(*EITHER)
        which = request.WhichOneof("input")
        data = bytes(request.data) if which == "data" else None
        digest = bytes(request.digest) if which == "digest" else None
        if len(request.certificate) == 0 or len(request.signature) == 0:
            raise BadRequest("certificate and signature are required", field="signature")
        if data is not None and len(data) > 1 << 20:
            raise BadRequest("data larger than 1 MiB: send its SHA-256 digest", field="data")
        reliance, valid = await self._run(self.service.verify_signature,
                                          bytes(request.certificate), bytes(request.signature),
                                          data=data, digest=digest)
        return pb.VerifyCertificateSignatureResponse(accepted=valid and reliance.allowed,
                                                     signature_valid=valid,
                                                     check=convert.check(reliance))


class CertificateCenterServicer(certificate_pb2_grpc.CertificateCenterServiceServicer):
    """The center's half of issuance at branch-only nodes (their certificate is the caller)."""

    def __init__(self, app: App, service: CertificateService) -> None:
        self.app = app
        self.service = service

    async def CheckSecurityMeans(self, request: pb.CheckSecurityMeansRequest,
                                 context: Ctx) -> pb.CheckSecurityMeansResponse:
        caller = require_role(*TELLER)
        means = SecurityMeans(request.otp_serial, request.otp_code, request.card_challenge_id,
                              request.card_answer)
        return pb.CheckSecurityMeansResponse(
            means=await self.app.run_store(self.service.check_security_means, caller, means))
