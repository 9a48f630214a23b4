"""``authd.v1.PolicyService``: validate, convert, call the policy service, convert back."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from authd import metrics, validate
from authd.app import App
from authd.context import Caller, Role, require_role
from authd.policy import convert as cv
from authd.policy.media import MediumKind
from authd.policy.service import (
    Answered,
    CardMeans,
    OtpMeans,
    PolicyService,
    SignatureMeans,
    TransferRequest,
)
from authd.v1 import policy_pb2 as pb
from authd.v1 import policy_pb2_grpc as pb_grpc
from devices.errors import BadRequest, Unreachable
from devices.policy.grades import MAX_KRW, Contract, CustomerKind, Limits
from devices.policy.orders import Order, Purpose
from devices.policy.terminals import DeviceInfo, normalise, require_device
from devices.token.signing import SignAlgorithm

if TYPE_CHECKING:
    from authd.otp.engine import GroupCommitEngine
    from authd.otp.feature import OtpFeature

T = TypeVar("T")
CUSTOMER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CUSTOMER_RULE = "1..64 letters, digits or . _ : -"
DECISION_ID = re.compile(r"[0-9a-f]{32}")
MAX_SIGNATURE = 1024
MAX_TIME = 253_402_300_799.0


def _customer(value: str) -> str:
    return validate.identifier(value, "customer_id", CUSTOMER_ID, CUSTOMER_RULE)


def _decision_id(value: str) -> str:
    return validate.identifier(value, "decision_id", DECISION_ID, "32 lower-case hex digits")


def _operator(value: str, caller: Caller) -> str:
    required = caller.role is Role.BRANCH
    return validate.text(value, "operator_id", required=required, max_length=64)


def _device(d: pb.DeviceInfo, *, identifying: bool) -> DeviceInfo:
    for name in ("ip", "mac", "hdd_serial", "usb_serial", "os_version", "browser_version",
                 "phone_id"):
        validate.text(getattr(d, name), f"device.{name}", max_length=64)
    return require_device(cv.device_from_pb(d), identifying=identifying)


def _additional(value: int) -> Any:
    return cv.ADDITIONAL.from_pb(value, None)  # NONE (0): none was done


class PolicyServicer(pb_grpc.PolicyServiceServicer):
    def __init__(self, app: App, service: PolicyService,
                 engine: GroupCommitEngine[TransferRequest, Answered],
                 otp: OtpFeature | None) -> None:
        self.app = app
        self.service = service
        self.engine = engine
        self.otp = otp

    async def _run(self, fn: Callable[[], T]) -> T:
        return await self.app.run_store(fn)

    # ------------------------------------------------------------------ decisions

    def _request(self, r: pb.AuthorizeTransferRequest, caller: Caller) -> TransferRequest:
        order = Order(
            institution=caller.institution, customer_id=_customer(r.customer_id),
            purpose=cv.PURPOSE.from_pb(r.purpose, Purpose.TRANSFER),
            amount=r.amount_krw,
            receiving=cv.RECEIVING.from_pb(r.receiving),
            to_account=r.to_account,
            channel=cv.CHANNEL.from_pb(r.channel),
            idempotency_key=r.idempotency_key).check(MAX_KRW)
        device = _device(r.device, identifying=False)
        otp = card = signature = None
        if r.HasField("otp") and r.HasField("security_card"):
            raise BadRequest("present an OTP code or a security-card answer, not both",
                             field="security_card")
        if r.HasField("otp"):
            if self.otp is None:
                raise Unreachable("this node does not serve the OTP center")
            otp = OtpMeans(validate.serial(r.otp.serial, "otp.serial"),
                           validate.otp_code(r.otp.code, "otp.code"))
        if r.HasField("security_card"):
            if self.service.cards is None:
                raise Unreachable("this node does not serve security cards")
            answer = r.security_card.answer
            if not (answer.isascii() and answer.isdigit() and 1 <= len(answer) <= 16):
                raise BadRequest("security_card.answer must be the digits asked",
                                 field="security_card.answer")
            card = CardMeans(validate.identifier(r.security_card.challenge_id,
                                                 "security_card.challenge_id", DECISION_ID,
                                                 "32 lower-case hex digits"), answer)
        if r.HasField("signature"):
            s = r.signature
            medium = cv.MEDIUM.from_pb(s.medium, field="signature.medium")
            if medium not in (MediumKind.TOKEN, MediumKind.SMARTCARD):
                raise BadRequest("signature.medium must be TOKEN or SMARTCARD",
                                 field="signature.medium")
            if not 1 <= len(s.signature) <= MAX_SIGNATURE:
                raise BadRequest(f"signature.signature must be 1..{MAX_SIGNATURE} bytes",
                                 field="signature.signature")
            try:
                algorithm = SignAlgorithm(s.algorithm) if s.algorithm else None
            except ValueError:
                raise BadRequest("signature.algorithm must be ecdsa-sha256, "
                                 "rsa-pkcs1v15-sha256 or rsa-pss-sha256",
                                 field="signature.algorithm") from None
            signature = SignatureMeans(medium, validate.serial(s.serial, "signature.serial"),
                                       s.signature, algorithm)
        role = cv.ROLE.from_pb(r.corporate_role, None)
        return TransferRequest(order, device, caller, otp, card, signature,
                               _additional(r.additional_done), role)

    async def AuthorizeTransfer(self, request: pb.AuthorizeTransferRequest,
                                context: grpc.aio.ServicerContext) -> pb.TransferDecision:
        caller = require_role(Role.BACKEND)
        req = self._request(request, caller)
        if req.otp is not None:
            assert self.otp is not None
            self.otp.verify_limit.check(caller.institution)
        future = self.engine.submit(req, f"{caller.institution}\x00{req.order.customer_id}")
        answered = await asyncio.wrap_future(future)
        if answered.otp_result is not None and self.otp is not None:
            self.otp.count(answered.otp_result, caller.institution)
        metrics.POLICY_DECISIONS.labels(institution=caller.institution,
                                        outcome=answered.decision.outcome.value).inc()
        return cv.answered_to_pb(answered, req.order.customer_id, req.order.amount)

    async def CancelTransfer(self, request: pb.CancelTransferRequest,
                             context: grpc.aio.ServicerContext) -> pb.TransferDecision:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        decision_id = _decision_id(request.decision_id)
        reason = validate.text(request.reason, "reason")
        row = await self._run(lambda: self.service.cancel(caller, decision_id, reason))
        return cv.row_to_pb(row)

    async def ExplainDecision(self, request: pb.ExplainDecisionRequest,
                              context: grpc.aio.ServicerContext) -> pb.TransferDecision:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        decision_id = _decision_id(request.decision_id)
        return cv.row_to_pb(await self._run(lambda: self.service.explain(caller, decision_id)))

    # ------------------------------------------------------------------ customers

    async def SetupCustomer(self, request: pb.SetupCustomerRequest,
                            context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BRANCH)
        customer = _customer(request.customer_id)
        kind = cv.KIND.from_pb(request.kind)
        operator = _operator(request.operator_id, caller)
        agreements = cv.agreements_from_pb(request.agreements)
        if request.master_administrator and kind is not CustomerKind.CORPORATE:
            raise BadRequest("master_administrator is for a corporate customer (the master "
                             "administrator's other institutions' OTP devices)",
                             field="master_administrator")
        return cv.customer_to_pb(await self._run(
            lambda: self.service.setup(caller, customer, kind, agreements, operator,
                                       master_administrator=request.master_administrator)))

    async def SetAgreements(self, request: pb.SetAgreementsRequest,
                            context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BRANCH)
        customer = _customer(request.customer_id)
        operator = _operator(request.operator_id, caller)
        agreements = cv.agreements_from_pb(request.agreements)
        return cv.customer_to_pb(await self._run(
            lambda: self.service.set_agreements(caller, customer, agreements, operator)))

    async def RegisterInternetBanking(self, request: pb.PolicyCustomerRef,
                                      context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BACKEND)
        customer = _customer(request.customer_id)
        return cv.customer_to_pb(await self._run(
            lambda: self.service.register_online(caller, customer)))

    async def GetCustomer(self, request: pb.PolicyCustomerRef,
                          context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        return cv.customer_to_pb(await self._run(lambda: self.service.view(caller, customer)))

    async def SetLimits(self, request: pb.SetLimitsRequest,
                        context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        operator = _operator(request.operator_id, caller)
        wanted = Limits(request.per_transfer_krw, request.daily_krw).check("limits")
        return cv.customer_to_pb(await self._run(
            lambda: self.service.set_limits(caller, customer, wanted, operator)))

    async def RecordContract(self, request: pb.RecordContractRequest,
                             context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BRANCH)
        customer = _customer(request.customer_id)
        operator = _operator(request.operator_id, caller)
        reference = validate.text(request.reference, "reference", max_length=64)
        contract = None
        if reference:
            grade = cv.GRADE.from_pb(request.grade)
            contract = Contract(reference, grade,
                                Limits(request.per_transfer_krw, request.daily_krw).check(
                                    "contract"))
        return cv.customer_to_pb(await self._run(
            lambda: self.service.record_contract(caller, customer, contract, operator)))

    async def LiftSuspension(self, request: pb.LiftSuspensionRequest,
                             context: grpc.aio.ServicerContext) -> pb.PolicyCustomer:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        channel = cv.LIFT.from_pb(request.channel)
        operator = _operator(request.operator_id, caller)
        age = validate.bounded_int(request.age, "age", maximum=150) or None
        return cv.customer_to_pb(await self._run(lambda: self.service.lift(
            caller, customer, channel, strong_login=request.strong_login, age=age,
            operator=operator)))

    # ------------------------------------------------------------------ terminals

    async def DesignateTerminal(self, request: pb.DesignateTerminalRequest,
                                context: grpc.aio.ServicerContext) -> pb.DesignatedTerminal:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        label = validate.text(request.label, "label", max_length=64)
        device = _device(request.device, identifying=True)
        done = _additional(request.additional_done)
        return cv.terminal_to_pb(await self._run(
            lambda: self.service.designate(caller, customer, label, device, done)))

    async def ListTerminals(self, request: pb.PolicyCustomerRef,
                            context: grpc.aio.ServicerContext) -> pb.ListTerminalsResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        found = await self._run(lambda: self.service.terminals(caller, customer))
        return pb.ListTerminalsResponse(terminals=[cv.terminal_to_pb(t) for t in found])

    async def RemoveTerminal(self, request: pb.RemoveTerminalRequest,
                             context: grpc.aio.ServicerContext) -> pb.RemoveTerminalResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        terminal = validate.identifier(request.terminal_id, "terminal_id", DECISION_ID,
                                       "32 lower-case hex digits")
        reason = validate.text(request.reason, "reason")
        await self._run(lambda: self.service.remove_terminal(caller, customer, terminal, reason))
        return pb.RemoveTerminalResponse()

    # ------------------------------------------------------------------ input counters

    async def ReportInput(self, request: pb.ReportInputRequest,
                          context: grpc.aio.ServicerContext) -> pb.InputCounter:
        caller = require_role(Role.BACKEND)
        customer = _customer(request.customer_id)
        kind = cv.INPUT.from_pb(request.kind)
        return cv.counter_to_pb(await self._run(
            lambda: self.service.report_input(caller, customer, kind, request.correct)))

    async def UnlockInput(self, request: pb.UnlockInputRequest,
                          context: grpc.aio.ServicerContext) -> pb.InputCounter:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        kind = cv.INPUT.from_pb(request.kind)
        operator = _operator(request.operator_id, caller)
        return cv.counter_to_pb(await self._run(lambda: self.service.unlock_input(
            caller, customer, kind, password_correct=request.password_correct,
            identity_checked=request.identity_checked, operator=operator)))

    # ------------------------------------------------------------------ incident list

    async def ReportIncident(self, request: pb.ReportIncidentRequest,
                             context: grpc.aio.ServicerContext) -> pb.ReportIncidentResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH, Role.ADMIN)
        device = _device(request.device, identifying=False)
        reason = validate.text(request.reason, "reason", required=True)
        listed = await self._run(lambda: self.service.report_incident(caller, device, reason))
        return pb.ReportIncidentResponse(incidents=[cv.incident_to_pb(i) for i in listed])

    async def CheckDevice(self, request: pb.CheckDeviceRequest,
                          context: grpc.aio.ServicerContext) -> pb.CheckDeviceResponse:
        require_role(Role.BACKEND, Role.BRANCH, Role.ADMIN)
        device = normalise(cv.device_from_pb(request.device))
        fields = await self.app.run_store(
            self.app.db.run, lambda tx: self.service.check_device(tx, device), write=False)
        return pb.CheckDeviceResponse(listed=bool(fields), fields=[f.value for f in fields])

    async def ListIncidents(self, request: pb.ListIncidentsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListIncidentsResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH, Role.ADMIN)
        found = await self._run(lambda: self.service.incidents(caller))
        return pb.ListIncidentsResponse(incidents=[cv.incident_to_pb(i) for i in found])

    async def WithdrawIncident(self, request: pb.WithdrawIncidentRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.WithdrawIncidentResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH, Role.ADMIN)
        incident = validate.identifier(request.incident_id, "incident_id", DECISION_ID,
                                       "32 lower-case hex digits")
        reason = validate.text(request.reason, "reason", required=True)
        await self._run(lambda: self.service.withdraw_incident(caller, incident, reason))
        return pb.WithdrawIncidentResponse()

    # ------------------------------------------------------------------ export

    async def ExportRecords(self, request: pb.ExportRecordsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ExportRecordsResponse:
        caller = require_role(Role.BACKEND, Role.BRANCH)
        customer = _customer(request.customer_id)
        since = validate.finite(request.since, "since", minimum=0, maximum=MAX_TIME)
        until = validate.finite(request.until, "until", minimum=0, maximum=MAX_TIME) or \
            time.time() + 1
        decisions, terminals = await self._run(
            lambda: self.service.export(caller, customer, since, until))
        return pb.ExportRecordsResponse(
            decisions=[cv.row_to_pb(d) for d in decisions],
            terminals=[cv.terminal_to_pb(t) for t in terminals],
            truncated=len(decisions) >= self.service.settings.export_max)
